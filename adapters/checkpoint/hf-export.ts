/**
 * A model's parts written back in the Hugging Face layout: `config.json` and the tokenizer files as
 * they were imported, the tensors under their checkpoint names in their stored dtype and bytes,
 * in shards of about `shardBytes` with `model.safetensors.index.json` (one `model.safetensors`
 * when they fit one). Parts are fetched one at a time, twice: once to plan the shards from their
 * headers, once to write; memory holds one part, never the model.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { checkpointLayout } from "../../domain/model/families/layout.ts"
import { parseSafetensors, type StDType } from "../../domain/model/safetensors.ts"
import { refused, type CheckpointRefused, type ModelParts } from "../../domain/ports/checkpoint-source.ts"
import { causeText } from "../failure.ts"

/** Hugging Face's default shard size. */
export const DEFAULT_SHARD_BYTES = 5 * 1024 ** 3

type Planned = { readonly checkpointName: string; readonly part: string; readonly name: string; readonly dtype: StDType; readonly shape: ReadonlyArray<number>; readonly bytes: number }

/** A part's tensors as its payload holds them, in the layout's order under their checkpoint names. */
const tensorsOf = (part: string, names: ReadonlyMap<string, string>, payload: Uint8Array) =>
  Effect.gen(function* () {
    const file = yield* Either.mapLeft(parseSafetensors(payload), (e) => refused(`the block of ${part} is not a part: ${e.message}`))
    const byName = new Map(file.entries.map((e) => [e.name, e]))
    return [...names].map(([name, checkpointName]) => {
      const e = byName.get(name)
      return e === undefined ? undefined : { checkpointName, name, dtype: e.dtype, shape: e.shape, data: file.buffer.subarray(e.begin, e.end) }
    })
  })

const io = (what: string) => (e: unknown) => refused(`${what}: ${causeText(e)}`)

/** Writes the model of `source` into `dir` (created; it must not exist or be empty); the files written. */
export const exportHfCheckpoint = <E>(dir: string, source: ModelParts<E>, shardBytes = DEFAULT_SHARD_BYTES): Effect.Effect<ReadonlyArray<string>, CheckpointRefused | E> =>
  Effect.gen(function* () {
    const layout = checkpointLayout(source.spec)
    const names = new Map(layout.map(({ part, tensors }) => [part, new Map(tensors.map((t) => [t.name, t.checkpointName]))]))
    // Plan: every tensor's dtype and size, from the parts' own headers.
    const planned: Planned[] = []
    for (const { part } of layout) {
      const tensors = yield* tensorsOf(part, names.get(part)!, yield* source.part(part))
      for (const t of tensors) {
        if (t === undefined) return yield* refused(`the block of ${part} lacks tensors its layout names`)
        planned.push({ checkpointName: t.checkpointName, part, name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.data.length })
      }
    }
    // Whole parts per shard, in the layout's order.
    const shards: Planned[][] = [[]]
    let size = 0
    for (const p of planned) {
      const last = shards.at(-1)!
      if (size > 0 && size + p.bytes > shardBytes && last.at(-1)!.part !== p.part) {
        shards.push([])
        size = 0
      }
      shards.at(-1)!.push(p)
      size += p.bytes
    }
    const fileOf = (i: number) => (shards.length === 1 ? "model.safetensors" : `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`)
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(dir, { recursive: true })
        if (fs.readdirSync(dir).length > 0) throw new Error("it is not empty")
        for (const [file, bytes] of Object.entries(source.files)) fs.writeFileSync(path.join(dir, file), bytes)
      },
      catch: io(`cannot export into ${dir}`)
    })
    for (const [i, shard] of shards.entries()) {
      const header: Record<string, unknown> = Object.create(null)
      let offset = 0
      for (const p of shard) {
        header[p.checkpointName] = { dtype: p.dtype, shape: [...p.shape], data_offsets: [offset, offset + p.bytes] }
        offset += p.bytes
      }
      const text = JSON.stringify(header)
      const json = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 8) * 8, " "))
      const file = path.join(dir, fileOf(i))
      const fd = yield* Effect.try({ try: () => fs.openSync(file, "w"), catch: io(`cannot write ${file}`) })
      yield* Effect.gen(function* () {
        const length = new Uint8Array(8)
        new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true)
        yield* Effect.try({ try: () => (fs.writeSync(fd, length), fs.writeSync(fd, json)), catch: io(`cannot write ${file}`) })
        for (const part of new Set(shard.map((p) => p.part))) {
          const tensors = yield* tensorsOf(part, names.get(part)!, yield* source.part(part))
          for (const t of tensors) yield* Effect.try({ try: () => fs.writeSync(fd, t!.data), catch: io(`cannot write ${file}`) })
        }
        yield* Effect.try({ try: () => fs.fsyncSync(fd), catch: io(`cannot write ${file}`) })
      }).pipe(Effect.ensuring(Effect.sync(() => fs.closeSync(fd))))
    }
    if (shards.length > 1) {
      const weightMap = Object.fromEntries(shards.flatMap((shard, i) => shard.map((p) => [p.checkpointName, fileOf(i)])))
      const index = { metadata: { total_size: planned.reduce((s, p) => s + p.bytes, 0) }, weight_map: weightMap }
      yield* Effect.try({ try: () => fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2)), catch: io(`cannot write the index in ${dir}`) })
    }
    return [...Object.keys(source.files), ...shards.map((_, i) => fileOf(i)), ...(shards.length > 1 ? ["model.safetensors.index.json"] : [])].sort()
  })
