import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { Effect, Either } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { type CheckpointRefused, openHfCheckpoint } from "../../../adapters/checkpoint/hf-directory.ts"
import { openSafetensorsFile } from "../../../adapters/checkpoint/safetensors-file.ts"
import { encodeSafetensors, parseSafetensors, type StDType, type StTensor } from "../../../domain/model/safetensors.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-hf-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let dirs = 0
const freshDir = () => {
  const dir = path.join(root, `c${dirs++}`)
  fs.mkdirSync(dir)
  return dir
}

const tensor = (dtype: StDType, shape: number[], seed = 1): StTensor => {
  const n = shape.reduce((a, b) => a * b, 1)
  return { dtype, shape, data: Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i) * 100) }
}

/** Each tensor's stored bytes, taken from the encoded file: what a reader must give back. */
const storedBytes = (file: Uint8Array): Map<string, Uint8Array> => {
  const parsed = Either.getOrThrow(parseSafetensors(file))
  return new Map(parsed.entries.map((e) => [e.name, parsed.buffer.slice(e.begin, e.end)]))
}

const shardName = (i: number, n: number) => `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`

interface Written {
  readonly dir: string
  readonly files: Map<string, Uint8Array>
  /** tensor name -> [shard, stored bytes] */
  readonly expected: Map<string, readonly [string, Uint8Array]>
}

/**
 * Writes a checkpoint: config.json and, for one shard without `index`, model.safetensors; otherwise
 * model-0000i-of-0000n.safetensors files and an index with their weight_map and total_size.
 */
const writeCheckpoint = (
  shards: ReadonlyArray<Readonly<Record<string, StTensor>>>,
  { index = shards.length > 1, dir = freshDir() }: { index?: boolean; dir?: string } = {}
): Written => {
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ model_type: "test", hidden_size: 4 }))
  const files = new Map<string, Uint8Array>()
  const expected = new Map<string, readonly [string, Uint8Array]>()
  // A null prototype: a tensor may be named "__proto__".
  const weightMap: Record<string, string> = Object.create(null)
  let total = 0
  shards.forEach((tensors, i) => {
    const name = index ? shardName(i, shards.length) : "model.safetensors"
    const bytes = encodeSafetensors(tensors, { format: "pt" })
    fs.writeFileSync(path.join(dir, name), bytes)
    files.set(name, bytes)
    for (const [t, b] of storedBytes(bytes)) {
      expected.set(t, [name, b])
      weightMap[t] = name
      total += b.length
    }
  })
  if (index) {
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }))
  }
  return { dir, files, expected }
}

const rewriteIndex = (dir: string, edit: (index: { metadata: { total_size: number }; weight_map: Record<string, string> }) => void) => {
  const file = path.join(dir, "model.safetensors.index.json")
  const index = JSON.parse(fs.readFileSync(file, "utf8"))
  edit(index)
  fs.writeFileSync(file, JSON.stringify(index))
}

/** Open descriptors of this process, to show a refusal leaves none behind. */
const openFds = () => (fs.existsSync("/proc/self/fd") ? fs.readdirSync("/proc/self/fd").length : 0)

/** Opening is refused, with nothing returned and no handle left open while the scope goes on. */
const refusal = (dir: string): Effect.Effect<CheckpointRefused, unknown> =>
  Effect.scoped(
    Effect.gen(function* () {
      const before = openFds()
      const e = yield* Effect.flip(openHfCheckpoint(dir))
      expect(e._tag).toBe("CheckpointRefused")
      expect(openFds()).toBe(before)
      return e
    })
  )

/** Every listed tensor reads back byte-identical, with its shard, dtype and shape. */
const expectReadsBack = (dir: string, w: Written, specs: ReadonlyMap<string, StTensor>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ckpt = yield* openHfCheckpoint(dir)
      expect([...ckpt.tensors.keys()].sort()).toEqual([...w.expected.keys()].sort())
      let total = 0
      for (const [name, [shard, bytes]] of w.expected) {
        const t = ckpt.tensors.get(name)!
        const spec = specs.get(name)!
        expect(t).toEqual({ shard, dtype: spec.dtype, shape: spec.shape, bytes: bytes.length })
        expect(Buffer.from(yield* ckpt.read(name)).equals(bytes)).toBe(true)
        total += bytes.length
      }
      expect(ckpt.totalBytes).toBe(total)
      expect(ckpt.shards).toEqual([...w.files.keys()].sort())
      return ckpt
    })
  )

describe("HF checkpoint directory: reading", () => {
  const single = {
    "model.embed_tokens.weight": tensor("BF16", [5, 4], 1),
    "model.layers.0.mlp.gate.weight": tensor("F32", [2, 4], 2),
    "model.norm.weight": tensor("F16", [4], 3),
    "lm_head.bias": tensor("F32", [0], 4)
  }

  it.effect("a single model.safetensors: config, every tensor with its dtype and shape, bytes as stored; no tokenizer files", () =>
    Effect.gen(function* () {
      const w = writeCheckpoint([single])
      const ckpt = yield* expectReadsBack(w.dir, w, new Map(Object.entries(single)))
      expect(ckpt.config).toEqual({ model_type: "test", hidden_size: 4 })
      expect([...ckpt.tensors.values()].every((t) => t.shard === "model.safetensors")).toBe(true)
      expect(ckpt.tokenizer).toBeUndefined()
      expect(ckpt.tokenizerConfig).toBeUndefined()
    })
  )

  it.effect("two shards with an index: tensors listed by shard and read back byte-identical; tokenizer files returned raw", () =>
    Effect.gen(function* () {
      const shards: Array<Record<string, StTensor>> = [
        { "model.embed_tokens.weight": tensor("BF16", [6, 4], 5), "model.layers.0.self_attn.q_proj.weight": tensor("F16", [4, 4], 6) },
        { "model.norm.weight": tensor("F32", [4], 7), "lm_head.weight": tensor("BF16", [6, 4], 8) }
      ]
      const w = writeCheckpoint(shards)
      const tok = new TextEncoder().encode(JSON.stringify({ model: { type: "BPE" } }))
      fs.writeFileSync(path.join(w.dir, "tokenizer.json"), tok)
      fs.writeFileSync(path.join(w.dir, "tokenizer_config.json"), "{}")
      const ckpt = yield* expectReadsBack(w.dir, w, new Map(shards.flatMap((s) => Object.entries(s))))
      expect(ckpt.tensors.get("lm_head.weight")!.shard).toBe("model-00002-of-00002.safetensors")
      expect(ckpt.tokenizer).toEqual(tok)
      expect(new TextDecoder().decode(ckpt.tokenizerConfig)).toBe("{}")
    })
  )

  it.effect("shards reached through symbolic links (as in the Hugging Face cache) are read", () =>
    Effect.gen(function* () {
      const shards: Array<Record<string, StTensor>> = [{ a: tensor("F32", [3]) }, { b: tensor("F16", [2, 2]) }]
      const blobs = writeCheckpoint(shards)
      const dir = freshDir()
      for (const f of fs.readdirSync(blobs.dir)) fs.symlinkSync(path.join(blobs.dir, f), path.join(dir, f))
      yield* expectReadsBack(dir, blobs, new Map(shards.flatMap((s) => Object.entries(s))))
    })
  )

  it.effect("reading a tensor the checkpoint lacks, or after its scope ended, is refused by name", () =>
    Effect.gen(function* () {
      const w = writeCheckpoint([single])
      const ckpt = yield* Effect.scoped(openHfCheckpoint(w.dir))
      const closed = yield* Effect.flip(ckpt.read("model.norm.weight"))
      expect(closed.message).toBe(`model.safetensors is closed`)
      const unknown = yield* Effect.scoped(Effect.flatMap(openHfCheckpoint(w.dir), (c) => Effect.flip(c.read("nope"))))
      expect(unknown.message).toBe(`the checkpoint in ${w.dir} has no tensor "nope"`)
      expect(unknown.tensor).toBe("nope")
    })
  )

  it("property: random tensor sets split into random shards are all listed in the right place and read back byte-identical", async () => {
    const name = fc.oneof(
      fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__"),
      fc.constantFrom("model.embed_tokens.weight", "lm_head.weight", "__proto__", "model.layers.10.mlp.experts.3.w1.weight")
    )
    const spec = fc.record({
      dtype: fc.constantFrom<StDType>("F32", "F16", "BF16"),
      shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
      seed: fc.integer({ min: 0, max: 1000 }),
      shard: fc.nat()
    })
    const tensors = fc.uniqueArray(fc.tuple(name, spec), { minLength: 1, maxLength: 8, selector: ([n]) => n })
    await fc.assert(
      fc.asyncProperty(tensors, fc.integer({ min: 1, max: 4 }), fc.boolean(), async (set, count, indexed) => {
        const groups = new Map<number, Record<string, StTensor>>()
        const specs = new Map<string, StTensor>()
        for (const [n, s] of set) {
          const t = tensor(s.dtype, s.shape, s.seed)
          specs.set(n, t)
          const g = groups.get(s.shard % count) ?? groups.set(s.shard % count, Object.create(null)).get(s.shard % count)!
          g[n] = t
        }
        const shards = [...groups.entries()].sort(([a], [b]) => a - b).map(([, g]) => g)
        const w = writeCheckpoint(shards, { index: shards.length > 1 || indexed })
        await Effect.runPromise(expectReadsBack(w.dir, w, specs))
        fs.rmSync(w.dir, { recursive: true, force: true })
      }),
      { numRuns: 40 }
    )
  })
})

describe("HF checkpoint directory: refusals name the file and tensor", () => {
  const twoShards = () =>
    writeCheckpoint([
      { "model.embed_tokens.weight": tensor("BF16", [6, 4]), "model.layers.0.mlp.up.weight": tensor("F16", [4, 4]) },
      { "lm_head.weight": tensor("F32", [6, 4]), "model.norm.weight": tensor("F32", [4]) }
    ])
  const shard1 = shardName(0, 2)
  const shard2 = shardName(1, 2)

  it.effect("a shard cut short is truncated at the first tensor whose bytes are missing", () =>
    Effect.gen(function* () {
      const w = twoShards()
      const bytes = w.files.get(shard2)!
      const parsed = Either.getOrThrow(parseSafetensors(bytes))
      const norm = parsed.entries.find((e) => e.name === "model.norm.weight")!
      fs.writeFileSync(path.join(w.dir, shard2), bytes.subarray(0, bytes.length - 10))
      const e = yield* refusal(w.dir)
      expect(e.message).toBe(
        `${shard2} is truncated: tensor "model.norm.weight" needs bytes ${norm.begin}..${norm.end} of a ${parsed.buffer.length - 10}-byte data section`
      )
      expect([e.file, e.tensor]).toEqual([shard2, "model.norm.weight"])
    })
  )

  it.effect("a header length past the end of the file is refused before anything else is read", () =>
    Effect.gen(function* () {
      const w = writeCheckpoint([{ a: tensor("F32", [2]) }])
      const bad = new Uint8Array(100)
      new DataView(bad.buffer).setBigUint64(0, 1000n, true)
      fs.writeFileSync(path.join(w.dir, "model.safetensors"), bad)
      expect((yield* refusal(w.dir)).message).toBe(`model.safetensors is truncated: its header length 1000 runs past the end of the 100-byte file`)
    })
  )

  it.effect("bytes after the last tensor are refused", () =>
    Effect.gen(function* () {
      const w = writeCheckpoint([{ a: tensor("F32", [2]) }])
      fs.appendFileSync(path.join(w.dir, "model.safetensors"), new Uint8Array(3))
      expect((yield* refusal(w.dir)).message).toBe(`model.safetensors has 3 bytes after its last tensor`)
    })
  )

  it.effect("an index naming a shard that is not there", () =>
    Effect.gen(function* () {
      const w = twoShards()
      fs.rmSync(path.join(w.dir, shard2))
      const e = yield* refusal(w.dir)
      expect(e.message).toBe(`model.safetensors.index.json names shard ${shard2}, which is not in ${w.dir}`)
      expect(e.file).toBe(shard2)
    })
  )

  it.effect("an index mapping a tensor to a shard that does not hold it", () =>
    Effect.gen(function* () {
      const w = twoShards()
      rewriteIndex(w.dir, (i) => void (i.weight_map["x"] = shard1))
      const e = yield* refusal(w.dir)
      expect(e.message).toBe(`model.safetensors.index.json maps "x" to ${shard1}, which does not hold it`)
      expect([e.file, e.tensor]).toEqual([shard1, "x"])
    })
  )

  it.effect("a shard tensor the index does not list, or maps to another shard", () =>
    Effect.gen(function* () {
      const w = twoShards()
      rewriteIndex(w.dir, (i) => void delete i.weight_map["model.norm.weight"])
      expect((yield* refusal(w.dir)).message).toBe(`${shard2} holds "model.norm.weight", which model.safetensors.index.json does not list`)
      // The same tensor in both shards, the index naming the first.
      const v = writeCheckpoint([{ a: tensor("F32", [2]) }, { a: tensor("F32", [2]), b: tensor("F16", [2]) }])
      rewriteIndex(v.dir, (i) => {
        i.weight_map["a"] = shard1
        i.metadata.total_size += 8
      })
      expect((yield* refusal(v.dir)).message).toBe(`${shard2} holds "a", which model.safetensors.index.json maps to ${shard1}`)
    })
  )

  it.effect("a metadata.total_size that is not the sum of the tensors' bytes", () =>
    Effect.gen(function* () {
      const w = twoShards()
      const total = [...w.expected.values()].reduce((s, [, b]) => s + b.length, 0)
      rewriteIndex(w.dir, (i) => void (i.metadata.total_size = total + 1))
      expect((yield* refusal(w.dir)).message).toBe(
        `model.safetensors.index.json gives metadata.total_size ${total + 1}, but its tensors hold ${total} bytes`
      )
    })
  )

  it.effect("a shard name that leaves the directory, even naming a valid file", () =>
    Effect.gen(function* () {
      for (const bad of ["../outside.safetensors", "sub/inner.safetensors", "..", "/etc/passwd"]) {
        const w = twoShards()
        fs.writeFileSync(path.join(path.dirname(w.dir), "outside.safetensors"), w.files.get(shard1)!)
        rewriteIndex(w.dir, (i) => void (i.weight_map["model.norm.weight"] = bad))
        const e = yield* refusal(w.dir)
        expect(e.message).toBe(
          `model.safetensors.index.json maps "model.norm.weight" to ${JSON.stringify(bad)}, which is not a plain file name inside the directory`
        )
      }
    })
  )

  it.effect("no config.json, a config.json that is not JSON, no weights at all", () =>
    Effect.gen(function* () {
      const a = writeCheckpoint([{ a: tensor("F32", [2]) }])
      fs.rmSync(path.join(a.dir, "config.json"))
      expect((yield* refusal(a.dir)).message).toBe(`no config.json in ${a.dir}`)
      const b = writeCheckpoint([{ a: tensor("F32", [2]) }])
      fs.writeFileSync(path.join(b.dir, "config.json"), "{ model_type: ")
      const notJson = yield* refusal(b.dir)
      expect(notJson.message).toMatch(/^config\.json is not JSON: /)
      expect(notJson.file).toBe("config.json")
      const c = writeCheckpoint([{ a: tensor("F32", [2]) }])
      fs.rmSync(path.join(c.dir, "model.safetensors"))
      expect((yield* refusal(c.dir)).message).toBe(`no model.safetensors or model.safetensors.index.json in ${c.dir}`)
    })
  )
})

describe("HF checkpoint directory: memory", () => {
  // A collector we can call, so that a dropped tensor's buffer is gone before the next is read.
  // Backing stores are freed after the collection, off the main thread: wait a little for them,
  // or the baseline still counts the file built above and hides what reading adds.
  v8.setFlagsFromString("--expose-gc")
  const gc = vm.runInNewContext("gc") as () => void
  const settle = Effect.promise(async () => {
    for (let i = 0; i < 3; i++) {
      gc()
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })

  it.scoped("reading every tensor of a 64 MiB shard never holds much more than one tensor", () =>
    Effect.gen(function* () {
      const MiB = 1024 * 1024
      const dir = freshDir()
      const file = path.join(dir, "model.safetensors")
      const digests = new Map<string, string>()
      let largest = 0
      {
        const tensors: Record<string, StTensor> = {}
        for (let i = 0; i < 8; i++) {
          const data = new Float32Array(2 * MiB) // 8 MiB of f32
          for (let j = 0; j < data.length; j += 1024) data[j] = i + j
          tensors[`layer.${i}.weight`] = { dtype: "F32", shape: [2048, 1024], data }
        }
        const bytes = encodeSafetensors(tensors)
        for (const [n, b] of storedBytes(bytes)) {
          digests.set(n, crypto.createHash("sha256").update(b).digest("hex"))
          largest = Math.max(largest, b.length)
        }
        fs.writeFileSync(file, bytes)
      }
      expect(fs.statSync(file).size).toBeGreaterThan(64 * MiB)
      yield* settle
      const baseline = process.memoryUsage().arrayBuffers
      const st = yield* openSafetensorsFile(file)
      let peak = 0
      for (const name of st.entries.keys()) {
        const bytes = yield* st.read(name)
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)
        expect(crypto.createHash("sha256").update(bytes).digest("hex")).toBe(digests.get(name))
        yield* settle
      }
      expect(digests.size).toBe(8)
      expect(peak).toBeLessThanOrEqual(largest + 16 * MiB)
      expect(peak).toBeLessThan(fs.statSync(file).size / 2)
    })
  )
})
