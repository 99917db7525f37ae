import type { ModelSpec } from "../model/spec.ts"

/**
 * Cost model for pipeline planning. Units: parameters are counts, FLOPs are counts, memory and
 * activations are bytes, device speed is FLOPs per second (or any unit consistent with the
 * layer costs), bandwidth is bytes per second.
 */

/** A dense transformer layer: hidden size h and FFN inner size f. */
export interface TransformerLayer {
  readonly hidden: number
  readonly ffn: number
}

/** What the partitioner needs per layer: its compute cost and the memory it pins on its device. */
export interface LayerLoad {
  readonly cost: number
  readonly memory: number
}

/** Parameters of one layer: attention Q, K, V, O (4h²) plus FFN up and down (2hf); biases and norms are negligible. */
export const layerParams = ({ hidden: h, ffn: f }: TransformerLayer): number => 4 * h * h + 2 * h * f

/**
 * Elements one layer keeps per token for its backward pass: the layer input, Q, K, V, the
 * attention output and the FFN input (6h), and the FFN hidden pre- and post-activation (2f).
 * Attention probabilities are recomputed in backward (flash-attention style), so no seq² term.
 */
export const activationElementsPerToken = ({ hidden: h, ffn: f }: TransformerLayer): number => 6 * h + 2 * f

/** Activation bytes per token: bytesPerElement × (6h + 2f). */
export const activationBytesPerToken = (layer: TransformerLayer, bytesPerElement = 4): number =>
  bytesPerElement * activationElementsPerToken(layer)

/** What crosses a stage boundary per token, forward (activations) or backward (their gradients): one hidden state. */
export const boundaryBytesPerToken = (hidden: number, bytesPerElement = 4): number => bytesPerElement * hidden

/** A multiply-add is two FLOPs and every parameter takes part once per token. */
export const forwardFlopsPerToken = (params: number): number => 2 * params

/** Backward computes gradients for both inputs and weights: twice the forward. */
export const backwardFlopsPerToken = (params: number): number => 2 * forwardFlopsPerToken(params)

/** One training step's FLOPs per token: forward + backward = 6 × params. */
export const trainingFlopsPerToken = (params: number): number => forwardFlopsPerToken(params) + backwardFlopsPerToken(params)

/** A dense layer's load for `tokens` tokens per step, holding its f32 weights. */
export const transformerLayerLoad = (layer: TransformerLayer, tokens = 1, bytesPerParam = 4): LayerLoad => {
  const params = layerParams(layer)
  return { cost: trainingFlopsPerToken(params) * tokens, memory: params * bytesPerParam }
}

// ---------------------------------------------------------------------------------------------
// The project's own model family.

const DTYPE_BYTES: Record<ModelSpec["dtype"], number> = { f32: 4, f16: 2, bf16: 2 }

/** Bytes per weight (and per gradient) in the spec's dtype. */
export const dtypeBytes = (spec: ModelSpec): number => DTYPE_BYTES[spec.dtype]

/** AdamW keeps two fp32 moments per parameter. */
export const ADAMW_BYTES_PER_PARAM = 8

/** Parameters of one `blyan-moe` layer: causal attention 4d², router d·E, and E experts of 2·d·dFF each. */
export const moeLayerParams = (spec: ModelSpec): number =>
  4 * spec.dModel * spec.dModel + spec.dModel * spec.experts + spec.experts * 2 * spec.dModel * spec.dFF

/** Parameters one token actually passes through: attention, router and only its top-k experts. */
export const moeActiveParams = (spec: ModelSpec): number =>
  4 * spec.dModel * spec.dModel + spec.dModel * spec.experts + Math.min(spec.topK, spec.experts) * 2 * spec.dModel * spec.dFF

/**
 * Activation elements per token of a `blyan-moe` layer kept for backward: 6d as in a dense layer,
 * the router logits (E), and the hidden pre/post activation of each of the top-k experts (2·dFF).
 */
export const moeActivationElementsPerToken = (spec: ModelSpec): number =>
  6 * spec.dModel + spec.experts + Math.min(spec.topK, spec.experts) * 2 * spec.dFF

export const moeActivationBytesPerToken = (spec: ModelSpec): number => dtypeBytes(spec) * moeActivationElementsPerToken(spec)

/** Which training state counts towards a layer's memory besides its weights. */
export interface MemoryCounting {
  readonly gradients?: boolean
  readonly optimizer?: boolean
}

export interface MoeCostOptions {
  /** Tokens per training step; costs scale linearly (1 gives FLOPs per token). */
  readonly tokens?: number
  readonly counting?: MemoryCounting
}

/**
 * Per-layer {cost, memory} of a `blyan-moe` spec, ready for the partitioner: cost is training
 * FLOPs (forward + backward over the active parameters), memory is weight bytes in the spec's
 * dtype plus, when counted, gradients (same dtype) and AdamW state (2 × fp32). Embedding and
 * head (256·d each) are tiny and left to the first and last stage's headroom.
 */
export const blyanMoeLayerCosts = (spec: ModelSpec, options: MoeCostOptions = {}): ReadonlyArray<LayerLoad> => {
  const tokens = options.tokens ?? 1
  const params = moeLayerParams(spec)
  const perParam =
    dtypeBytes(spec) + (options.counting?.gradients ? dtypeBytes(spec) : 0) + (options.counting?.optimizer ? ADAMW_BYTES_PER_PARAM : 0)
  const load: LayerLoad = { cost: trainingFlopsPerToken(moeActiveParams(spec)) * tokens, memory: params * perParam }
  return Array.from({ length: spec.layers }, () => load)
}

/**
 * What a `blyan-moe` layer costs while it trains, per token: its FLOPs, and memory for its
 * weights, gradients and AdamW state. Plans made on the ledger's model use this, and audit checks
 * plans on registered nodes against it.
 */
export const trainingLayerLoads = (spec: ModelSpec): ReadonlyArray<LayerLoad> => blyanMoeLayerCosts(spec, { counting: { gradients: true, optimizer: true } })
