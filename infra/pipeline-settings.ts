import { Config } from "effect"
import type { TransportSettings } from "../actors/pipeline-transport.ts"
import { setting } from "./config.ts"

/**
 * The pipeline transport's settings from the original BLYAN_PIPELINE_* names, in seconds and
 * megabytes as they were; a malformed or out-of-range value is refused, naming the variable.
 */
const positive = (name: string, fallback: number) => Config.number(name).pipe(Config.validate({ message: "a positive number", validation: (n) => n > 0 }), Config.withDefault(fallback))
const count = (name: string, fallback: number, least: number) =>
  Config.integer(name).pipe(Config.validate({ message: `a whole number of at least ${least}`, validation: (n) => n >= least }), Config.withDefault(fallback))

export const transportSettings = setting(
  Config.all({
    timeoutS: positive("BLYAN_PIPELINE_TIMEOUT_S", 5.0),
    maxRetries: count("BLYAN_PIPELINE_MAX_RETRIES", 2, 0),
    backoffBaseS: positive("BLYAN_PIPELINE_BACKOFF_BASE_S", 0.1),
    threshold: count("BLYAN_PIPELINE_BREAKER_THRESHOLD", 5, 1),
    resetS: positive("BLYAN_PIPELINE_BREAKER_RESET_S", 10),
    chunkBytes: count("BLYAN_PIPELINE_CHUNK_BYTES", 1024 * 1024, 1),
    compression: Config.literal("none", "gzip")("BLYAN_PIPELINE_COMPRESSION").pipe(Config.withDefault("none" as const)),
    maxBufferMb: positive("BLYAN_PIPELINE_MAX_BUFFER_MB", 256)
  }).pipe(
    Config.map(
      (s): TransportSettings => ({
        timeoutMs: s.timeoutS * 1000,
        maxRetries: s.maxRetries,
        backoffBaseMs: s.backoffBaseS * 1000,
        breaker: { threshold: s.threshold, resetMs: s.resetS * 1000 },
        chunkBytes: s.chunkBytes,
        compression: s.compression,
        maxBufferBytes: Math.floor(s.maxBufferMb * 1024 * 1024)
      })
    )
  )
)

/** Stage failures a pipeline round takes before it falls back to a single node (`BLYAN_ROUND_MAX_FAILURES`). */
export const roundMaxFailures = setting(count("BLYAN_ROUND_MAX_FAILURES", 3, 1))

/** The pause between an epoch's rounds, at the boundary where a newly promoted plan takes over (`BLYAN_PIPELINE_ROUND_INTERVAL`, seconds, 0 by default). */
export const roundIntervalMs = setting(
  Config.map(Config.number("BLYAN_PIPELINE_ROUND_INTERVAL").pipe(Config.validate({ message: "a number of seconds of at least 0", validation: (n) => n >= 0 }), Config.withDefault(0)), (s) =>
    Math.ceil(s * 1000)
  )
)

/** How long one attempt of a pipeline step may take before its missing stage is taken as failed (`BLYAN_PIPELINE_STEP_TIMEOUT_S`). */
export const stepDeadlineMs = setting(Config.map(positive("BLYAN_PIPELINE_STEP_TIMEOUT_S", 120), (s) => Math.ceil(s * 1000)))
