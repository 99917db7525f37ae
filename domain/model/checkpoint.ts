/**
 * Importing expert and router tensors from real MoE checkpoints (safetensors shards) into blocks.
 *
 * Mixtral:  model.layers.L.block_sparse_moe.experts.E.{w1,w2,w3}.weight   model.layers.L.block_sparse_moe.gate.weight
 * Qwen-MoE: model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight       model.layers.L.mlp.gate.weight
 *
 * Expert tensors go to block `layer{L}.expert{E}`, router weights to `layer{L}.router`; the tensor
 * keeps the rest of its original name (e.g. `w1.weight`) and its dtype and values, unchanged.
 * Everything else (attention, norms, embeddings, Qwen's shared expert) is reported as skipped.
 */
import { Either } from "effect"
import type { MalformedSafetensors } from "./safetensors.ts"
import { entryData, parseSafetensors } from "./safetensors.ts"
import { expertPart, routerPart } from "./spec.ts"
import type { DType, Part, Tensor } from "./tensor.ts"

export interface CheckpointName {
  readonly block: string
  readonly tensor: string
}

const EXPERT = /^model\.layers\.(0|[1-9]\d*)\.(?:block_sparse_moe|mlp)\.experts\.(0|[1-9]\d*)\.(.+)$/
const ROUTER = /^model\.layers\.(0|[1-9]\d*)\.(?:block_sparse_moe|mlp)\.(gate\.weight)$/

/** The block (and tensor name within it) a checkpoint tensor belongs to, or undefined when it is not an expert or router tensor. */
export const mapCheckpointName = (name: string): CheckpointName | undefined => {
  const e = EXPERT.exec(name)
  if (e !== null) return { block: expertPart(Number(e[1]), Number(e[2])), tensor: e[3]! }
  const r = ROUTER.exec(name)
  if (r !== null) return { block: routerPart(Number(r[1])), tensor: r[2]! }
  return undefined
}

export interface CheckpointImport {
  /** One part per block, sorted by name; tensor dtypes as in the checkpoint. */
  readonly parts: ReadonlyArray<Part>
  /** Checkpoint tensor names that map to no block. */
  readonly skipped: ReadonlyArray<string>
}

const DTYPES = { F32: "f32", F16: "f16", BF16: "bf16" } as const satisfies Record<string, DType>

/** Groups the expert and router tensors of one or more safetensors shards into parts. */
export const importCheckpoint = (shards: ReadonlyArray<Uint8Array>): Either.Either<CheckpointImport, MalformedSafetensors> => {
  const parts = new Map<string, Record<string, Tensor>>()
  const skipped: string[] = []
  for (const bytes of shards) {
    const parsed = parseSafetensors(bytes)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    const file = parsed.right
    for (const entry of file.entries) {
      const mapped = mapCheckpointName(entry.name)
      if (mapped === undefined) {
        skipped.push(entry.name)
        continue
      }
      let tensors = parts.get(mapped.block)
      if (tensors === undefined) {
        tensors = Object.create(null) as Record<string, Tensor>
        parts.set(mapped.block, tensors)
      }
      tensors[mapped.tensor] = { dtype: DTYPES[entry.dtype], shape: entry.shape, data: entryData(file, entry) }
    }
  }
  const names = [...parts.keys()].sort()
  return Either.right({ parts: names.map((name) => ({ name, tensors: parts.get(name)! })), skipped: skipped.sort() })
}
