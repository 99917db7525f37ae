/**
 * Importing a checkpoint (run: `npx tsx bench/import.ts`), written to bench/results/import.json.
 * A synthetic Mixtral-shaped checkpoint of BENCH_IMPORT_LAYERS layers (12 by default: 2.3 GB in
 * bf16, three shards with an index, random finite values) is written to a temporary directory;
 * then, alternately, it is imported (read tensor by tensor, checked, encoded part by part in its
 * stored dtype and put in a file blob store, each blob hashed and fsynced) and its shards are
 * copied with the same chunked reads and writes a plain copy makes. Memory is sampled every 20 ms:
 * the import must stay within the bound stated below, far under the checkpoint's size.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect } from "effect"
import { planCheckpoint } from "../actors/checkpoint-import.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"
import { openHfCheckpoint } from "../adapters/checkpoint/hf-directory.ts"
import { decodeHfConfig } from "../domain/model/families/config.ts"
import { checkpointLayout } from "../domain/model/families/layout.ts"
import { tinyTokenizer } from "../test/support/tiny-tokenizer.ts"
import { machineInfo, writeResults } from "./record.ts"

const LAYERS = Number(process.env.BENCH_IMPORT_LAYERS ?? 12)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3)
/** The bound the import's resident memory may grow by, over its level before the import. */
const MEMORY_BOUND_MIB = 512
const SHARDS = 3
const CHUNK = 16 * 1024 * 1024

const config = {
  architectures: ["MixtralForCausalLM"],
  model_type: "mixtral",
  hidden_act: "silu",
  vocab_size: 32000,
  hidden_size: 1024,
  intermediate_size: 3584,
  num_hidden_layers: LAYERS,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  num_local_experts: 8,
  num_experts_per_tok: 2,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 1e6,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16"
}
const spec = (() => {
  const s = decodeHfConfig(config)
  if (s._tag === "Left") throw new Error(s.left.message)
  return s.right
})()

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-import-"))
const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Random finite bf16 values (bit 14, the exponent's top bit, cleared: |x| < 2), from a xorshift stream. */
const filler = () => {
  let s = 0x9e3779b9
  return (bytes: Uint8Array) => {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
    for (let i = 0; i < words.length; i++) {
      s ^= s << 13
      s ^= s >>> 17
      s ^= s << 5
      words[i] = (s >>> 0) & 0xbfffbfff
    }
  }
}

/** The checkpoint in the Hugging Face layout, written a chunk at a time. */
const writeCheckpoint = (dir: string) => {
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 2))
  const t = tinyTokenizer()
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t.tokenizer))
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(t.config))
  const tensors = checkpointLayout(spec).flatMap((p) => p.tensors.map((x) => ({ name: x.checkpointName, shape: x.shape, bytes: x.shape.reduce((a, b) => a * b, 1) * 2 })))
  const total = tensors.reduce((s, x) => s + x.bytes, 0)
  const fill = filler()
  const chunk = new Uint8Array(CHUNK)
  const weightMap: Record<string, string> = {}
  let next = 0
  for (let i = 0; i < SHARDS; i++) {
    const file = `model-0000${i + 1}-of-0000${SHARDS}.safetensors`
    const mine: typeof tensors = []
    let size = 0
    while (next < tensors.length && (i === SHARDS - 1 || size < total / SHARDS)) {
      mine.push(tensors[next]!)
      size += tensors[next++]!.bytes
    }
    const header: Record<string, unknown> = {}
    let offset = 0
    for (const x of mine) {
      header[x.name] = { dtype: "BF16", shape: x.shape, data_offsets: [offset, offset + x.bytes] }
      offset += x.bytes
      weightMap[x.name] = file
    }
    const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, " "))
    const fd = fs.openSync(path.join(dir, file), "w")
    const length = Buffer.alloc(8)
    length.writeBigUInt64LE(BigInt(json.length))
    fs.writeSync(fd, length)
    fs.writeSync(fd, json)
    for (let left = offset; left > 0; left -= CHUNK) {
      const n = Math.min(CHUNK, left)
      fill(chunk.subarray(0, n))
      fs.writeSync(fd, chunk, 0, n)
    }
    fs.closeSync(fd)
  }
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2))
  return total
}

/** Resident memory sampled while `run` runs: its peak growth over the level before. */
const sampled = async <A>(run: () => Promise<A>) => {
  const before = process.memoryUsage().rss
  let peak = before
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
  const t0 = performance.now()
  try {
    const result = await run()
    peak = Math.max(peak, process.memoryUsage().rss)
    return { result, ms: performance.now() - t0, growth: peak - before, peak }
  } finally {
    clearInterval(timer)
  }
}

const importOnce = (dir: string, blobs: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* makeFileBlobStore(blobs)
        const plan = yield* planCheckpoint(yield* openHfCheckpoint(dir))
        const stored = yield* plan.readParts((p) => Effect.as(store.put(p.payload), p.bytes))
        return { parts: stored.length, bytes: stored.reduce((s, b) => s + b, 0) }
      })
    )
  )

const copyOnce = (dir: string, to: string) => {
  fs.mkdirSync(to)
  const buffer = Buffer.alloc(CHUNK)
  let bytes = 0
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".safetensors"))) {
    const from = fs.openSync(path.join(dir, file), "r")
    const out = fs.openSync(path.join(to, file), "w")
    for (let n; (n = fs.readSync(from, buffer, 0, CHUNK, null)) > 0; bytes += n) fs.writeSync(out, buffer, 0, n)
    fs.fsyncSync(out)
    fs.closeSync(out)
    fs.closeSync(from)
  }
  return bytes
}

try {
  const dir = path.join(root, "checkpoint")
  const t0 = performance.now()
  const total = writeCheckpoint(dir)
  console.log(`wrote a ${(total / 1e9).toFixed(2)} GB checkpoint (${spec.layers} layers × ${spec.experts} experts, bf16, ${SHARDS} shards) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  const imports: Array<{ ms: number; growth: number; peak: number; parts: number; bytes: number }> = []
  const copies: number[] = []
  for (let r = 0; r < REPEATS; r++) {
    const i = await sampled(() => importOnce(dir, path.join(root, `blobs-${r}`)))
    if (i.result.bytes !== total) throw new Error(`the import read ${i.result.bytes} bytes of ${total}`)
    imports.push({ ms: i.ms, growth: i.growth, peak: i.peak, ...i.result })
    fs.rmSync(path.join(root, `blobs-${r}`), { recursive: true, force: true })
    const c = await sampled(async () => copyOnce(dir, path.join(root, `copy-${r}`)))
    if (c.result !== fs.readdirSync(dir).filter((f) => f.endsWith(".safetensors")).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0)) throw new Error("the copy is short")
    copies.push(c.ms)
    fs.rmSync(path.join(root, `copy-${r}`), { recursive: true, force: true })
  }
  const importMs = median(imports.map((i) => i.ms))
  const copyMs = median(copies)
  const growth = Math.max(...imports.map((i) => i.growth))
  if (growth > MEMORY_BOUND_MIB * 2 ** 20) throw new Error(`the import grew resident memory by ${mib(growth)} MiB, over its ${MEMORY_BOUND_MIB} MiB bound`)
  console.log(
    `import of ${(total / 1e9).toFixed(2)} GB into ${imports[0]!.parts} blocks: ${(importMs / 1000).toFixed(1)} s (${mib(total / (importMs / 1000))} MiB/s), ` +
      `copying the shards: ${(copyMs / 1000).toFixed(1)} s: ${(importMs / copyMs).toFixed(2)}x; peak memory growth ${mib(growth)} MiB (bound ${MEMORY_BOUND_MIB} MiB)`
  )
  writeResults("import", {
    bench: "import",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `medians of ${REPEATS} alternating runs; a synthetic ${spec.family} checkpoint (${spec.layers} layers, ${spec.experts} experts of ${spec.hidden}×${spec.expertFF}, vocab ${spec.vocab}, bf16) in ${SHARDS} shards; import = read, check, encode each part and put it in a file blob store (hashed, fsynced); copy = the shards read and written in ${CHUNK / 2 ** 20} MiB chunks, fsynced`,
    checkpointBytes: total,
    blocks: imports[0]!.parts,
    importSeconds: Math.round(importMs) / 1000,
    copySeconds: Math.round(copyMs) / 1000,
    ratio: Math.round((importMs / copyMs) * 100) / 100,
    importMiBPerSecond: mib(total / (importMs / 1000)),
    peakMemoryGrowthMiB: mib(growth),
    memoryBoundMiB: MEMORY_BOUND_MIB
  })
} finally {
  fs.rmSync(root, { recursive: true, force: true })
}
