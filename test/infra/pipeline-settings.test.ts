import { ConfigProvider, Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { transportSettings } from "../../infra/pipeline-settings.ts"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

describe("the pipeline transport's settings from BLYAN_PIPELINE_*", () => {
  it.effect("default to the original values, and take every variable in its original unit", () =>
    Effect.gen(function* () {
      expect(yield* transportSettings.pipe(withEnv({}))).toEqual({
        timeoutMs: 5000,
        maxRetries: 2,
        backoffBaseMs: 100,
        breaker: { threshold: 5, resetMs: 10_000 },
        chunkBytes: 1024 * 1024,
        compression: "none",
        maxBufferBytes: 256 * 1024 * 1024
      })
      const set = {
        BLYAN_PIPELINE_TIMEOUT_S: "2.5",
        BLYAN_PIPELINE_MAX_RETRIES: "0",
        BLYAN_PIPELINE_BACKOFF_BASE_S: "0.05",
        BLYAN_PIPELINE_BREAKER_THRESHOLD: "3",
        BLYAN_PIPELINE_BREAKER_RESET_S: "1",
        BLYAN_PIPELINE_CHUNK_BYTES: "65536",
        BLYAN_PIPELINE_COMPRESSION: "gzip",
        BLYAN_PIPELINE_MAX_BUFFER_MB: "0.5"
      }
      expect(yield* transportSettings.pipe(withEnv(set))).toEqual({
        timeoutMs: 2500,
        maxRetries: 0,
        backoffBaseMs: 50,
        breaker: { threshold: 3, resetMs: 1000 },
        chunkBytes: 65536,
        compression: "gzip",
        maxBufferBytes: 524288
      })
    })
  )

  it.effect("a malformed or out-of-range value is refused, naming its variable", () =>
    Effect.gen(function* () {
      for (const [name, value] of [
        ["BLYAN_PIPELINE_TIMEOUT_S", "0"],
        ["BLYAN_PIPELINE_MAX_RETRIES", "-1"],
        ["BLYAN_PIPELINE_BREAKER_THRESHOLD", "0"],
        ["BLYAN_PIPELINE_CHUNK_BYTES", "1.5"],
        ["BLYAN_PIPELINE_COMPRESSION", "zstd"],
        ["BLYAN_PIPELINE_MAX_BUFFER_MB", "lots"]
      ]) {
        const e = yield* Effect.flip(transportSettings.pipe(withEnv({ [name!]: value! })))
        expect(e._tag).toBe("SettingInvalid")
        expect(e.message).toContain(name)
      }
    })
  )
})
