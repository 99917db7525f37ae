import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Exit, Layer } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { importCheckpoint, modelParts } from "../../actors/checkpoint-import.ts"
import { chat } from "../../actors/chat.ts"
import { generateFamily } from "../../domain/model/families/generate.ts"
import { loadTokenizer } from "../../domain/model/families/tokenizer.ts"
import { buildFamilyGraphs } from "../../domain/model/onnx/families.ts"
import { TestExecutor } from "../domain/model/support.ts"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { registerContributor } from "../../actors/contributors.ts"
import { auditLedger } from "../../actors/auditor.ts"
import { foldStream } from "../../actors/command.ts"
import { initLedger } from "../../actors/genesis.ts"
import { openHfCheckpoint } from "../../adapters/checkpoint/hf-directory.ts"
import { exportHfCheckpoint } from "../../adapters/checkpoint/hf-export.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { checkpointLayout } from "../../domain/model/families/layout.ts"
import { defaultSpec, partNames } from "../../domain/model/spec.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { IMPORT_REASON, ModelProjection } from "../../domain/projections/model.ts"
import { tinyMixtralConfig, tinyQwen3MoeConfig } from "../support/family-weights.ts"
import { writeHfCheckpoint } from "../support/hf-checkpoint.ts"
import { contributorSeed, testLedgerKey, testTrust } from "../support/ledger.ts"
import { logOf } from "../support/log.ts"
import { crashingAfter, freshLedger } from "../support/stores.ts"
import { tempDir } from "../support/tmp.ts"

const Runtime = Layer.provideMerge(ModelRunnerLive, TestExecutor)

const root = tempDir("blyan-import-ledger-")
let n = 0
const checkpoint = (config: Readonly<Record<string, unknown>>, options: Parameters<typeof writeHfCheckpoint>[2] = {}) => writeHfCheckpoint(path.join(root, `c${n++}`), config, options)
const signer = { seed: contributorSeed(1) }

/** A ledger with the built-in model and this test's contributor registered. */
const ledger = Effect.gen(function* () {
  const { events, blobs } = yield* freshLedger()
  const on = <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
  yield* on(initLedger(defaultSpec))
  yield* on(registerContributor(keyPairFromSeed(signer.seed).publicKey, testLedgerKey))
  return { events, blobs, on }
})

const importDir = (dir: string, name: string, who: { seed: string } = signer) => Effect.scoped(Effect.flatMap(openHfCheckpoint(dir), (source) => importCheckpoint(source, name, who)))

const size = (events: EventStoreApi) => Effect.map(logOf(events, 0), (log) => log.length)

describe("an imported model on the ledger", () => {
  it.scoped("both families beside the built-in model: a spec and one block per part each, what the checkpoint holds, the log auditing clean; importing again records nothing", () =>
    Effect.gen(function* () {
      const { events, on } = yield* ledger
      const mixtral = checkpoint(tinyMixtralConfig)
      const qwen = checkpoint(tinyQwen3MoeConfig, { shards: 2, dtype: "F16" })
      const a = yield* on(importDir(mixtral.dir, "tiny-mixtral"))
      const b = yield* on(importDir(qwen.dir, "tiny-qwen"))
      for (const [report, c] of [[a, mixtral], [b, qwen]] as const) {
        expect(report.blocks).toBe(checkpointLayout(c.spec).length)
        expect(report.appended).toBe(report.blocks)
        expect(Object.keys(report.spec.files).sort()).toEqual(["config.json", "tokenizer.json", "tokenizer_config.json"])
      }
      const { state } = yield* on(foldStream("*", ModelProjection))
      expect(state.spec?.spec).toEqual(defaultSpec)
      for (const name of partNames(defaultSpec)) expect(state.current.has(name)).toBe(true)
      expect([...state.imported.keys()]).toEqual(["tiny-mixtral", "tiny-qwen"])
      for (const { part } of checkpointLayout(qwen.spec)) expect(state.history.get(`tiny-qwen/${part}`)?.map((v) => v.reason)).toEqual([IMPORT_REASON])
      const audit = yield* on(auditLedger(testTrust))
      expect(audit.replay.firstBad).toBeUndefined()
      expect(audit.badBlobs).toEqual([])
      const before = yield* size(events)
      const again = yield* on(importDir(mixtral.dir, "tiny-mixtral"))
      expect(again.appended).toBe(0)
      expect(yield* size(events)).toBe(before)
      // And back out in the Hugging Face layout, tensor for tensor.
      const out = path.join(root, `export-${n++}`)
      yield* exportHfCheckpoint(out, yield* on(modelParts("tiny-qwen")), 4096)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const [x, y] = [yield* openHfCheckpoint(qwen.dir), yield* openHfCheckpoint(out)]
          expect([...y.tensors.keys()]).toEqual([...x.tensors.keys()])
          for (const name of x.tensors.keys()) expect(Buffer.from(yield* y.read(name)).equals(Buffer.from(yield* x.read(name)))).toBe(true)
        })
      )
      expect(fs.readFileSync(path.join(out, "config.json")).equals(fs.readFileSync(path.join(qwen.dir, "config.json")))).toBe(true)
    })
  )

  it.scoped("chat with an imported model: its own tokenizer, the tokens the checkpoint's weights give, each token and layer attributed to the model's expert blocks", () =>
    Effect.gen(function* () {
      const { on } = yield* ledger
      const c = checkpoint(tinyQwen3MoeConfig, { dtype: "F32" })
      yield* on(importDir(c.dir, "tiny-qwen"))
      const options = { maxTokens: 6, temperature: 0, seed: 3 }
      const answer = yield* on(chat("the theater", options, "tiny-qwen").pipe(Effect.provide(Runtime)))
      // Without a name, chat answers with the model published last.
      expect(yield* on(chat("the theater", options).pipe(Effect.provide(Runtime)))).toEqual(answer)
      expect(answer.model).toBe("tiny-qwen")
      const tokenizer = Either.getOrThrow(loadTokenizer(fs.readFileSync(path.join(c.dir, "tokenizer.json")), fs.readFileSync(path.join(c.dir, "tokenizer_config.json")), c.spec.vocab))
      const direct = yield* generateFamily(c.spec, buildFamilyGraphs(c.spec), c.weights, tokenizer.encode("the theater"), options).pipe(Effect.provide(Runtime))
      expect(answer.tokens).toEqual(direct.tokens)
      expect(answer.text).toBe(tokenizer.decode(direct.tokens))
      const { state } = yield* on(foldStream("*", ModelProjection))
      expect(answer.experts).toHaveLength(direct.tokens.length * c.spec.layers * c.spec.topK)
      for (const e of answer.experts) expect(e.block).toBe(state.current.get(`tiny-qwen/layer${e.layer}.expert${e.expert}`)!.block)
      const unknown = yield* on(Effect.either(chat("x", options, "nope")).pipe(Effect.provide(Runtime)))
      expect(Either.isLeft(unknown) && unknown.left.message).toBe(`the ledger holds no model named "nope" (it holds blyan-moe, tiny-qwen)`)
    })
  )

  it.scoped("killed after its spec and before its blocks, the import run again finishes it: each block once, the log auditing clean", () =>
    Effect.gen(function* () {
      const { events, blobs } = yield* ledger
      const c = checkpoint(tinyQwen3MoeConfig)
      const killed = yield* Effect.exit(importDir(c.dir, "tiny").pipe(Effect.provideService(EventStore, crashingAfter(events, 1)), Effect.provideService(BlobStore, blobs)))
      expect(Exit.isFailure(killed)).toBe(true)
      const on = <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
      expect((yield* on(foldStream("*", ModelProjection))).state.imported.has("tiny")).toBe(true)
      const finished = yield* on(importDir(c.dir, "tiny"))
      expect(finished.appended).toBe(finished.blocks)
      const log = yield* logOf(events, 0)
      expect(log.filter((e) => e.type === "BlockAppended" && (e.data as { name: string }).name.startsWith("tiny/")).length).toBe(finished.blocks)
      expect(log.filter((e) => e.type === "ModelSpecPublished").length).toBe(2)
      expect((yield* on(auditLedger(testTrust))).replay.firstBad).toBeUndefined()
    })
  )

  it.scoped("refused, recording nothing: another checkpoint under a taken name, a bad checkpoint, an unregistered key, a name that cannot be one", () =>
    Effect.gen(function* () {
      const { events, on } = yield* ledger
      yield* on(importDir(checkpoint(tinyMixtralConfig).dir, "tiny"))
      const before = yield* size(events)
      const cases: ReadonlyArray<readonly [Effect.Effect<unknown, { message: string }, EventStore | BlobStore>, string]> = [
        [importDir(checkpoint(tinyMixtralConfig, { seed: 99 }).dir, "tiny"), "with other weights; import this checkpoint under another name"],
        [importDir(checkpoint(tinyMixtralConfig, { config: { rope_theta: 5e5 } }).dir, "tiny"), "the ledger already holds a model named tiny"],
        [importDir(checkpoint(tinyQwen3MoeConfig, { alter: (w) => (w.get("model.layers.0.mlp.gate.weight")!.data[0] = Infinity) }).dir, "bad"), `tensor "model.layers.0.mlp.gate.weight" (of layer0.router) holds NaN or infinity`],
        [importDir(checkpoint(tinyQwen3MoeConfig).dir, "stranger", { seed: contributorSeed(7) }), "is not registered on this ledger"],
        [importDir(checkpoint(tinyQwen3MoeConfig).dir, "a/b"), `"a/b" cannot name a model`]
      ]
      for (const [attempt, message] of cases) {
        const r = yield* on(Effect.either(attempt))
        expect(Either.isLeft(r) && r.left.message).toContain(message)
      }
      expect(yield* size(events)).toBe(before)
      const missing = yield* on(Effect.either(modelParts("nope")))
      expect(Either.isLeft(missing) && missing.left.message).toBe(`the ledger holds no model named "nope" (it holds blyan-moe, tiny)`)
    })
  )
})
