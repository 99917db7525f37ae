/**
 * A Hugging Face checkpoint directory read in place: `config.json`, the weights as one
 * `model.safetensors` or as shards listed by `model.safetensors.index.json`, and the tokenizer files
 * when present. Opening reads only the JSON files and each shard's header, and checks that the index
 * and the shards agree; tensors are read one at a time from one open handle per shard, so a
 * checkpoint of any size is imported without holding a shard in memory.
 */
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Effect, Exit, Scope } from "effect"
import type { StDType } from "../../domain/model/safetensors.ts"
import { causeText } from "../failure.ts"
import { CheckpointRefused, refused, type CheckpointSource } from "../../domain/ports/checkpoint-source.ts"
import { openSafetensorsFile, type SafetensorsFile } from "./safetensors-file.ts"

export { CheckpointRefused } from "../../domain/ports/checkpoint-source.ts"

export const CONFIG_FILE = "config.json"
export const SINGLE_WEIGHTS_FILE = "model.safetensors"
export const INDEX_FILE = "model.safetensors.index.json"
export const TOKENIZER_FILE = "tokenizer.json"
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

/** JSON side files (config, index, tokenizer) larger than this are refused rather than read whole. */
export const MAX_JSON_BYTES = 256 * 1024 * 1024

export interface HfTensor {
  readonly shard: string
  readonly dtype: StDType
  readonly shape: ReadonlyArray<number>
  readonly bytes: number
}

export interface HfCheckpoint extends CheckpointSource {
  readonly dir: string
  /** `config.json` parsed but not decoded: its schema depends on the architecture. */
  readonly config: unknown
  /** Every tensor, by name, sorted by name. */
  readonly tensors: ReadonlyMap<string, HfTensor>
  /** The shard file names, sorted. */
  readonly shards: ReadonlyArray<string>
  /** The sum of the tensors' stored bytes. */
  readonly totalBytes: number
  /** The raw bytes of `tokenizer.json` and `tokenizer_config.json`, when present. */
  readonly tokenizer: Uint8Array | undefined
  readonly tokenizerConfig: Uint8Array | undefined
  /** One tensor's stored bytes (little-endian, its dtype), read from its shard's range only. */
  readonly read: (name: string) => Effect.Effect<Uint8Array, CheckpointRefused>
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const quote = (s: string) => JSON.stringify(s)

/** A file's bytes, or undefined when it does not exist; refused if it is not a file or too large. */
const readSmallFile = (dir: string, file: string): Effect.Effect<Uint8Array | undefined, CheckpointRefused> =>
  Effect.tryPromise({
    try: async () => {
      const full = path.join(dir, file)
      let stat
      try {
        stat = await fsp.stat(full)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
        throw e
      }
      if (!stat.isFile()) return refused(`${file} in ${dir} is not a regular file`, file)
      if (stat.size > MAX_JSON_BYTES) return refused(`${file} has ${stat.size} bytes, over the ${MAX_JSON_BYTES}-byte limit`, file)
      return new Uint8Array(await fsp.readFile(full))
    },
    catch: (e) => refused(`cannot read ${file} in ${dir}: ${causeText(e)}`, file)
  }).pipe(Effect.flatMap((r) => (r instanceof CheckpointRefused ? Effect.fail(r) : Effect.succeed(r))))

const parseJson = (file: string, bytes: Uint8Array): Effect.Effect<unknown, CheckpointRefused> =>
  Effect.try({
    try: () => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as unknown,
    catch: (e) => refused(`${file} is not JSON: ${causeText(e)}`, file)
  })

/**
 * A shard named by the index must be a file directly inside the directory: a name with a separator
 * or a dot-dir could make the importer read any file the process can. (A symbolic link is followed,
 * as the Hugging Face cache links every snapshot file to its blob.)
 */
const isPlainFileName = (name: string) =>
  name !== "" && name !== "." && name !== ".." && !name.includes("..") && !/[/\\\0]/.test(name) && path.basename(name) === name

interface Index {
  readonly weightMap: ReadonlyMap<string, string>
  readonly totalSize: number | undefined
}

const parseIndex = (json: unknown): Effect.Effect<Index, CheckpointRefused> =>
  Effect.gen(function* () {
    const bad = (why: string, tensor?: string) => Effect.fail(refused(`${INDEX_FILE} ${why}`, INDEX_FILE, tensor))
    if (!isRecord(json)) return yield* bad("is not a JSON object")
    const rawMap = json.weight_map
    if (!isRecord(rawMap)) return yield* bad("has no weight_map object")
    const weightMap = new Map<string, string>()
    for (const [tensor, shard] of Object.entries(rawMap)) {
      if (typeof shard !== "string") return yield* bad(`maps ${quote(tensor)} to ${JSON.stringify(shard)}, not a file name`, tensor)
      if (!isPlainFileName(shard)) {
        return yield* bad(`maps ${quote(tensor)} to ${quote(shard)}, which is not a plain file name inside the directory`, tensor)
      }
      weightMap.set(tensor, shard)
    }
    if (weightMap.size === 0) return yield* bad("maps no tensors")
    let totalSize: number | undefined
    const metadata = json.metadata
    if (metadata !== undefined && metadata !== null) {
      if (!isRecord(metadata)) return yield* bad("has a metadata entry that is not an object")
      const t = metadata.total_size
      if (t !== undefined) {
        if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
          return yield* bad(`has metadata.total_size ${JSON.stringify(t)}, not a byte count`)
        }
        totalSize = t
      }
    }
    return { weightMap, totalSize }
  })

/** Checks that the index and the opened shards list the same tensors in the same places. */
const checkAgreement = (index: Index, shards: ReadonlyMap<string, SafetensorsFile>): Effect.Effect<void, CheckpointRefused> =>
  Effect.gen(function* () {
    for (const [tensor, shard] of index.weightMap) {
      if (!shards.get(shard)!.entries.has(tensor)) {
        return yield* Effect.fail(refused(`${INDEX_FILE} maps ${quote(tensor)} to ${shard}, which does not hold it`, shard, tensor))
      }
    }
    for (const [shard, file] of shards) {
      for (const tensor of file.entries.keys()) {
        const mapped = index.weightMap.get(tensor)
        if (mapped === undefined) {
          return yield* Effect.fail(refused(`${shard} holds ${quote(tensor)}, which ${INDEX_FILE} does not list`, shard, tensor))
        }
        if (mapped !== shard) {
          return yield* Effect.fail(refused(`${shard} holds ${quote(tensor)}, which ${INDEX_FILE} maps to ${mapped}`, shard, tensor))
        }
      }
    }
  })

const openWeights = (dir: string): Effect.Effect<Map<string, SafetensorsFile>, CheckpointRefused, Scope.Scope> =>
  Effect.gen(function* () {
    const exists = (file: string) =>
      Effect.tryPromise({
        try: () => fsp.stat(path.join(dir, file)).then(
          () => true,
          (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? false : Promise.reject(e))
        ),
        catch: (e) => refused(`cannot read ${file} in ${dir}: ${causeText(e)}`, file)
      })
    // As transformers does, a single model.safetensors is preferred to an index beside it.
    if (yield* exists(SINGLE_WEIGHTS_FILE)) {
      const file = yield* openSafetensorsFile(path.join(dir, SINGLE_WEIGHTS_FILE), SINGLE_WEIGHTS_FILE)
      return new Map([[SINGLE_WEIGHTS_FILE, file]])
    }
    const indexBytes = yield* readSmallFile(dir, INDEX_FILE)
    if (indexBytes === undefined) {
      return yield* Effect.fail(refused(`no ${SINGLE_WEIGHTS_FILE} or ${INDEX_FILE} in ${dir}`))
    }
    const index = yield* Effect.flatMap(parseJson(INDEX_FILE, indexBytes), parseIndex)
    const names = [...new Set(index.weightMap.values())].sort()
    for (const shard of names) {
      if (!(yield* exists(shard))) {
        return yield* Effect.fail(refused(`${INDEX_FILE} names shard ${shard}, which is not in ${dir}`, shard))
      }
    }
    const shards = new Map<string, SafetensorsFile>()
    for (const shard of names) shards.set(shard, yield* openSafetensorsFile(path.join(dir, shard), shard))
    yield* checkAgreement(index, shards)
    if (index.totalSize !== undefined) {
      let sum = 0
      for (const file of shards.values()) for (const e of file.entries.values()) sum += e.end - e.start
      if (sum !== index.totalSize) {
        return yield* Effect.fail(
          refused(`${INDEX_FILE} gives metadata.total_size ${index.totalSize}, but its tensors hold ${sum} bytes`, INDEX_FILE)
        )
      }
    }
    return shards
  })

/**
 * Opens the checkpoint in `dir` for the current scope: every shard stays open until the scope ends.
 * A refusal closes whatever was opened at once and returns nothing.
 */
export const openHfCheckpoint = (dir: string): Effect.Effect<HfCheckpoint, CheckpointRefused, Scope.Scope> =>
  Effect.gen(function* () {
    const stat = yield* Effect.tryPromise({
      try: () => fsp.stat(dir),
      catch: (e) =>
        refused(
          (e as NodeJS.ErrnoException).code === "ENOENT" ? `checkpoint directory ${dir} does not exist` : `cannot read ${dir}: ${causeText(e)}`
        )
    })
    if (!stat.isDirectory()) return yield* Effect.fail(refused(`${dir} is not a directory`))
    const configBytes = yield* readSmallFile(dir, CONFIG_FILE)
    if (configBytes === undefined) return yield* Effect.fail(refused(`no ${CONFIG_FILE} in ${dir}`, CONFIG_FILE))
    const config = yield* parseJson(CONFIG_FILE, configBytes)
    // The shards live in a scope of their own, closed at once if opening fails and otherwise when
    // the caller's scope ends, so a refused checkpoint holds no handle while the caller goes on.
    const inner = yield* Effect.acquireRelease(Scope.make(), (scope, exit) => Scope.close(scope, exit))
    const shards = yield* openWeights(dir).pipe(
      Scope.extend(inner),
      Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
    )
    const [tokenizer, tokenizerConfig] = yield* Effect.all([readSmallFile(dir, TOKENIZER_FILE), readSmallFile(dir, TOKENIZER_CONFIG_FILE)]).pipe(
      Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
    )
    const all: Array<[string, HfTensor]> = []
    for (const [shard, file] of shards) {
      for (const e of file.entries.values()) all.push([e.name, { shard, dtype: e.dtype, shape: e.shape, bytes: e.end - e.start }])
    }
    all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const tensors: ReadonlyMap<string, HfTensor> = new Map(all)
    const totalBytes = all.reduce((sum, [, t]) => sum + t.bytes, 0)
    const read = (name: string): Effect.Effect<Uint8Array, CheckpointRefused> =>
      Effect.suspend(() => {
        const t = tensors.get(name)
        if (t === undefined) return Effect.fail(refused(`the checkpoint in ${dir} has no tensor ${quote(name)}`, undefined, name))
        return shards.get(t.shard)!.read(name)
      })
    const readInto = (name: string, into: Uint8Array): Effect.Effect<void, CheckpointRefused> =>
      Effect.suspend(() => {
        const t = tensors.get(name)
        if (t === undefined) return Effect.fail(refused(`the checkpoint in ${dir} has no tensor ${quote(name)}`, undefined, name))
        return shards.get(t.shard)!.readInto(name, into)
      })
    const files: Record<string, Uint8Array> = { [CONFIG_FILE]: configBytes }
    if (tokenizer !== undefined) files[TOKENIZER_FILE] = tokenizer
    if (tokenizerConfig !== undefined) files[TOKENIZER_CONFIG_FILE] = tokenizerConfig
    return { dir, config, files, tensors, shards: [...shards.keys()], totalBytes, tokenizer, tokenizerConfig, read, readInto }
  })
