import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { planCheckpoint } from "../../actors/checkpoint-import.ts"
import { openHfCheckpoint } from "../../adapters/checkpoint/hf-directory.ts"
import { exportHfCheckpoint } from "../../adapters/checkpoint/hf-export.ts"
import { referenceForward } from "../support/family-reference.ts"
import { checkpointLayout } from "../../domain/model/families/layout.ts"
import { decodePart } from "../../domain/model/safetensors.ts"
import { tinyMixtralConfig, tinyQwen3MoeConfig } from "../support/family-weights.ts"
import { writeHfCheckpoint, type HfCheckpointOptions } from "../support/hf-checkpoint.ts"
import { tempDir } from "../support/tmp.ts"

const root = tempDir("blyan-import-")
let n = 0
const written = (config: Readonly<Record<string, unknown>>, options: HfCheckpointOptions = {}) => writeHfCheckpoint(path.join(root, `c${n++}`), config, options)

/** Every part of the checkpoint in `dir`, as the import reads it. */
const importAll = (dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const plan = yield* planCheckpoint(yield* openHfCheckpoint(dir))
      // The payload is only lent to the sink: kept here as a copy.
      return { ...plan, parts: yield* plan.readParts((p) => Effect.succeed({ ...p, payload: p.payload.slice() })) }
    })
  )

describe("importing a Hugging Face MoE checkpoint", () => {
  for (const [family, config] of [["mixtral", tinyMixtralConfig], ["qwen3_moe", tinyQwen3MoeConfig]] as const)
    for (const [dtype, shards] of [["BF16", 0], ["F16", 2], ["F32", 3]] as const)
      it.effect(`${family}, ${dtype}${shards > 0 ? `, ${shards} shards` : ""}: one block per part in the ledger's order, every tensor's stored values kept, the same logits as the checkpoint`, () =>
        Effect.gen(function* () {
          const c = written(config, { dtype, shards })
          const imported = yield* importAll(c.dir)
          expect(imported.spec).toEqual(c.spec)
          const layout = checkpointLayout(c.spec)
          expect(imported.parts.map((p) => p.part)).toEqual(layout.map((p) => p.part))
          const back = new Map<string, { shape: number[]; data: Float32Array }>()
          for (const [i, p] of imported.parts.entries()) {
            const part = Either.getOrThrow(decodePart(p.payload))
            expect(part.name).toBe(p.part)
            for (const t of layout[i]!.tensors) {
              const got = part.tensors[t.name]!
              expect(got.dtype).toBe(dtype.toLowerCase())
              back.set(t.checkpointName, { shape: [...got.shape], data: got.data })
              expect(Array.from(got.data)).toEqual(Array.from(c.weights.get(t.checkpointName)!.data))
            }
          }
          expect(imported.parts.reduce((s, p) => s + p.bytes, 0)).toBe([...c.weights.values()].reduce((s, t) => s + t.data.length * (dtype === "F32" ? 4 : 2), 0))
          const tokens = imported.tokenizer.encode("the theater in a tent")
          expect(referenceForward(c.spec, back, tokens).logits).toEqual(referenceForward(c.spec, c.weights, tokens).logits)
        })
      )

  it.effect("refuses, naming why, an unknown family, a missing or misshaped tensor, NaN in a router, a tokenizer the vocabulary cannot hold, no tokenizer, a truncated shard", () =>
    Effect.gen(function* () {
      const truncated = written(tinyMixtralConfig, { shards: 2 })
      const shard = path.join(truncated.dir, "model-00002-of-00002.safetensors")
      fs.truncateSync(shard, fs.statSync(shard).size - 10)
      const cases: ReadonlyArray<readonly [string, string]> = [
        [written(tinyMixtralConfig, { config: { model_type: "llama" } }).dir, `model_type "llama" is not a supported MoE family`],
        [written(tinyQwen3MoeConfig, { alter: (w) => w.delete("model.layers.1.mlp.experts.3.up_proj.weight") }).dir, `the checkpoint has no tensor "model.layers.1.mlp.experts.3.up_proj.weight" (of layer1.expert3)`],
        [
          written(tinyMixtralConfig, { alter: (w) => w.set("model.layers.0.self_attn.k_proj.weight", { shape: [4, 16], data: new Float32Array(64) }) }).dir,
          `tensor "model.layers.0.self_attn.k_proj.weight" is [4, 16], not [8, 16] as config.json implies`
        ],
        [
          written(tinyMixtralConfig, { alter: (w) => w.set("model.layers.0.extra.weight", { shape: [2], data: new Float32Array(2) }) }).dir,
          `tensor "model.layers.0.extra.weight" is not part of a mixtral model as config.json describes it`
        ],
        [
          written(tinyQwen3MoeConfig, { alter: (w) => (w.get("model.layers.1.mlp.gate.weight")!.data[5] = NaN) }).dir,
          `tensor "model.layers.1.mlp.gate.weight" (of layer1.router) holds NaN or infinity at value 5`
        ],
        [written(tinyMixtralConfig, { config: { vocab_size: 200 } }).dir, "tokenizer.json uses 263 ids, more than the model's vocabulary of 200"],
        [written(tinyMixtralConfig, { noTokenizer: true }).dir, "the checkpoint has no tokenizer.json"],
        [truncated.dir, "model-00002-of-00002.safetensors is truncated"]
      ]
      for (const [dir, message] of cases) {
        const r = yield* Effect.either(importAll(dir))
        expect(Either.isLeft(r) && r.left.message).toContain(message)
      }
    })
  )
})

describe("exporting an imported checkpoint", () => {
  for (const [family, config, dtype, shards, shardBytes] of [
    ["mixtral", tinyMixtralConfig, "BF16", 2, 4096],
    ["qwen3_moe", tinyQwen3MoeConfig, "F16", 0, undefined],
    ["qwen3_moe", tinyQwen3MoeConfig, "F32", 3, 20_000]
  ] as const)
    it.effect(`${family}, ${dtype}: export then import again gives every tensor byte for byte, and the config and tokenizer files unchanged`, () =>
      Effect.gen(function* () {
        const c = written(config, { dtype, shards })
        const parts = new Map((yield* importAll(c.dir)).parts.map((p) => [p.part, p.payload]))
        const out = path.join(root, `export-${n++}`)
        const files = Object.fromEntries(["config.json", "tokenizer.json", "tokenizer_config.json"].map((f) => [f, new Uint8Array(fs.readFileSync(path.join(c.dir, f)))]))
        const exported = yield* exportHfCheckpoint(out, { spec: c.spec, files, part: (name) => Effect.succeed(parts.get(name)!) }, shardBytes)
        expect(exported).toEqual(fs.readdirSync(out).sort())
        if (shardBytes !== undefined) expect(exported.filter((f) => f.endsWith(".safetensors")).length).toBeGreaterThan(1)
        for (const f of Object.keys(files)) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(c.dir, f)))).toBe(true)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const [before, after] = [yield* openHfCheckpoint(c.dir), yield* openHfCheckpoint(out)]
            expect([...after.tensors.keys()]).toEqual([...before.tensors.keys()])
            for (const [name, t] of before.tensors) {
              expect({ dtype: after.tensors.get(name)!.dtype, shape: after.tensors.get(name)!.shape }).toEqual({ dtype: t.dtype, shape: t.shape })
              expect(Buffer.from(yield* after.read(name)).equals(Buffer.from(yield* before.read(name)))).toBe(true)
            }
          })
        )
        // And what was exported imports again into the same blocks.
        const again = (yield* importAll(out)).parts
        for (const p of again) expect(Buffer.from(p.payload).equals(Buffer.from(parts.get(p.part)!))).toBe(true)
      })
    )

  it.effect("refuses a non-empty directory and a block that is not the part the layout names", () =>
    Effect.gen(function* () {
      const c = written(tinyMixtralConfig)
      const parts = new Map((yield* importAll(c.dir)).parts.map((p) => [p.part, p.payload]))
      const source = { spec: c.spec, files: {}, part: (name: string) => Effect.succeed(parts.get(name)!) }
      const busy = yield* Effect.either(exportHfCheckpoint(c.dir, source))
      expect(Either.isLeft(busy) && busy.left.message).toBe(`cannot export into ${c.dir}: it is not empty`)
      const swapped = yield* Effect.either(exportHfCheckpoint(path.join(root, `export-${n++}`), { ...source, part: (name: string) => Effect.succeed(parts.get(name === "head" ? "embedding" : name)!) }))
      expect(Either.isLeft(swapped) && swapped.left.message).toBe("the block of head lacks tensors its layout names")
    })
  )
})
