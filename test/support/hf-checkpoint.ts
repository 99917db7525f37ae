/**
 * Tiny Mixtral and Qwen3-MoE checkpoints written in the Hugging Face layout, as `save_pretrained`
 * leaves them: `config.json`, the weights in one `model.safetensors` or in shards with
 * `model.safetensors.index.json`, and a byte-level BPE `tokenizer.json` with its config. The
 * vocabulary is the tokenizer's, padded as real models pad theirs.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import { decodeHfConfig, type FamilySpec } from "../../domain/model/families/config.ts"
import { roundToDtype } from "../../domain/model/half.ts"
import { encodeSafetensors, fromSt, type StDType } from "../../domain/model/safetensors.ts"
import { familyWeights, type FamilyTensor } from "./family-weights.ts"
import { tinyTokenizer } from "./tiny-tokenizer.ts"

/** The tiny tokenizer's ids, padded to a multiple of 16. */
export const TINY_VOCAB = Math.ceil(tinyTokenizer().vocabSize / 16) * 16

export type HfCheckpointOptions = {
  readonly dtype?: StDType
  /** Weights in this many shards with an index; one `model.safetensors` when absent. */
  readonly shards?: number
  /** Config fields over the base config's. */
  readonly config?: Readonly<Record<string, unknown>>
  /** What to do to the weights before they are written. */
  readonly alter?: (weights: Map<string, FamilyTensor>) => void
  readonly seed?: number
  /** Without the tokenizer files. */
  readonly noTokenizer?: boolean
}

/** Writes a checkpoint of `baseConfig`'s family into `dir`; returns its spec and the weights as stored (rounded to the dtype). */
export const writeHfCheckpoint = (dir: string, baseConfig: Readonly<Record<string, unknown>>, options: HfCheckpointOptions = {}) => {
  const dtype = options.dtype ?? "BF16"
  const config = { ...baseConfig, vocab_size: TINY_VOCAB, torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype], ...options.config }
  const spec: FamilySpec = Either.getOrThrow(decodeHfConfig({ ...config, model_type: baseConfig.model_type }))
  const weights = familyWeights(spec, options.seed ?? 7)
  options.alter?.(weights)
  for (const [name, t] of weights) weights.set(name, { shape: t.shape, data: roundToDtype(t.data, fromSt[dtype]) })
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 2))
  if (options.noTokenizer !== true) {
    const t = tinyTokenizer()
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t.tokenizer))
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(t.config))
  }
  const names = [...weights.keys()].sort()
  const shards = options.shards ?? 0
  const tensorsOf = (list: ReadonlyArray<string>) => Object.fromEntries(list.map((n) => [n, { dtype, shape: weights.get(n)!.shape, data: weights.get(n)!.data }]))
  if (shards === 0) fs.writeFileSync(path.join(dir, "model.safetensors"), encodeSafetensors(tensorsOf(names)))
  else {
    const file = (i: number) => `model-${String(i + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`
    const weightMap: Record<string, string> = {}
    let total = 0
    for (let i = 0; i < shards; i++) {
      const mine = names.filter((_, k) => k % shards === i)
      for (const n of mine) {
        weightMap[n] = file(i)
        total += weights.get(n)!.data.length * (dtype === "F32" ? 4 : 2)
      }
      fs.writeFileSync(path.join(dir, file(i)), encodeSafetensors(tensorsOf(mine)))
    }
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2))
  }
  return { dir, spec, weights: weights as ReadonlyMap<string, FamilyTensor> }
}
