/**
 * Where a Hugging Face MoE checkpoint keeps its tensors, and which ledger part (block) each one
 * belongs to. A tensor's name inside its part is the checkpoint name without the layer (or
 * `model.`) prefix, so the checkpoint name is rebuilt exactly from the part and that name.
 */
import { attentionPart, EMBEDDING, expertPart, HEAD, parsePartName, type PartRef, routerPart } from "../spec.ts"
import type { FamilySpec } from "./config.ts"

export type LayoutTensor = {
  /** The name inside the part. */
  readonly name: string
  readonly checkpointName: string
  /** PyTorch order: a Linear weight is [out, in]. */
  readonly shape: ReadonlyArray<number>
}
export type LayoutPart = { readonly part: string; readonly tensors: ReadonlyArray<LayoutTensor> }

const layerPrefix = (layer: number) => `model.layers.${layer}.`
/** The MoE block's module name: Mixtral's `block_sparse_moe`, Qwen3-MoE's `mlp`. */
const moeModule = (spec: FamilySpec) => (spec.family === "mixtral" ? "block_sparse_moe" : "mlp")

const tensor = (prefix: string, name: string, shape: ReadonlyArray<number>): LayoutTensor => ({ name, checkpointName: prefix + name, shape })

/** The tensors of one part, in a fixed order; undefined when the spec has no such part. */
export const partTensors = (spec: FamilySpec, ref: PartRef): ReadonlyArray<LayoutTensor> | undefined => {
  const { hidden: d, vocab, headDim } = spec
  const q = spec.heads * headDim
  const kv = spec.kvHeads * headDim
  switch (ref.kind) {
    case "embedding":
      return [tensor("model.", "embed_tokens.weight", [vocab, d])]
    case "head":
      // Tied: the head's projection is the embedding matrix, which lives in the embedding part.
      return spec.tieEmbeddings ? [tensor("model.", "norm.weight", [d])] : [tensor("model.", "norm.weight", [d]), tensor("", "lm_head.weight", [vocab, d])]
    case "attention": {
      if (ref.layer >= spec.layers) return undefined
      const p = layerPrefix(ref.layer)
      const common = [
        tensor(p, "input_layernorm.weight", [d]),
        tensor(p, "self_attn.q_proj.weight", [q, d]),
        tensor(p, "self_attn.k_proj.weight", [kv, d]),
        tensor(p, "self_attn.v_proj.weight", [kv, d]),
        tensor(p, "self_attn.o_proj.weight", [d, q])
      ]
      return spec.family === "qwen3_moe" ? [...common, tensor(p, "self_attn.q_norm.weight", [headDim]), tensor(p, "self_attn.k_norm.weight", [headDim])] : common
    }
    case "router": {
      if (ref.layer >= spec.layers) return undefined
      const p = layerPrefix(ref.layer)
      return [tensor(p, "post_attention_layernorm.weight", [d]), tensor(p, `${moeModule(spec)}.gate.weight`, [spec.experts, d])]
    }
    case "expert": {
      if (ref.layer >= spec.layers || ref.expert >= spec.experts) return undefined
      const p = layerPrefix(ref.layer)
      const ff = spec.expertFF
      const [gate, up, down]: readonly [string, string, string] = spec.family === "mixtral" ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"]
      const local = (n: string, shape: ReadonlyArray<number>) => tensor(p, `${moeModule(spec)}.experts.${ref.expert}.${n}.weight`, shape)
      return [local(gate, [ff, d]), local(up, [ff, d]), local(down, [d, ff])]
    }
  }
}

/** Every part's tensors in the ledger's order: embedding, then per layer attention, router and experts 0..E-1, then head. */
export const checkpointLayout = (spec: FamilySpec): ReadonlyArray<LayoutPart> => {
  const refs: Array<PartRef> = [{ kind: "embedding" }]
  for (let layer = 0; layer < spec.layers; layer++) {
    refs.push({ kind: "attention", layer }, { kind: "router", layer })
    for (let expert = 0; expert < spec.experts; expert++) refs.push({ kind: "expert", layer, expert })
  }
  refs.push({ kind: "head" })
  return refs.map((ref) => ({ part: partName(ref), tensors: partTensors(spec, ref) ?? [] }))
}

const partName = (ref: PartRef): string => {
  switch (ref.kind) {
    case "embedding":
      return EMBEDDING
    case "head":
      return HEAD
    case "attention":
      return attentionPart(ref.layer)
    case "router":
      return routerPart(ref.layer)
    case "expert":
      return expertPart(ref.layer, ref.expert)
  }
}

/** The tensors of a part named as on the ledger; undefined when the spec has no such part. */
export const tensorsOfPart = (spec: FamilySpec, part: string): ReadonlyArray<LayoutTensor> | undefined => {
  const ref = parsePartName(part)
  return ref === undefined ? undefined : partTensors(spec, ref)
}

const LAYER_NAME = /^model\.layers\.(0|[1-9]\d*)\.(.+)$/
const EXPERT_NAME = /^(?:block_sparse_moe|mlp)\.experts\.(0|[1-9]\d*)\./

/** Which part holds a checkpoint tensor, and its entry there; undefined for a name the layout does not have. */
export const partOfCheckpointName = (spec: FamilySpec, checkpointName: string): { readonly part: string; readonly tensor: LayoutTensor } | undefined => {
  const ref = refOfCheckpointName(checkpointName)
  if (ref === undefined) return undefined
  // Parsing only guesses the part; the part's own list decides (family, bounds and exact spelling).
  const hit = partTensors(spec, ref)?.find((t) => t.checkpointName === checkpointName)
  return hit === undefined ? undefined : { part: partName(ref), tensor: hit }
}

const refOfCheckpointName = (name: string): PartRef | undefined => {
  if (name === "model.embed_tokens.weight") return { kind: "embedding" }
  if (name === "model.norm.weight" || name === "lm_head.weight") return { kind: "head" }
  const m = LAYER_NAME.exec(name)
  if (m === null) return undefined
  const layer = Number(m[1])
  const rest = m[2]!
  const e = EXPERT_NAME.exec(rest)
  if (e !== null) return { kind: "expert", layer, expert: Number(e[1]) }
  if (rest.startsWith("input_layernorm.") || rest.startsWith("self_attn.")) return { kind: "attention", layer }
  return { kind: "router", layer }
}
