/**
 * The building blocks of a blyan-moe forward pass, written with the IR's primitive ops only, so
 * that the autodiff can differentiate all of them (LayerNorm and GELU are decomposed).
 */
import type { GraphBuilder } from "./ir.ts"

export const LN_EPS = 1e-5
/** Additive attention mask value for future positions; exp of it underflows to 0 in f32 and f64. */
export const MASKED = -1e9

/** LayerNorm over the last axis: (x − mean) / sqrt(var + eps) · γ + β. */
export const layerNorm = (b: GraphBuilder, x: string, gamma: string, beta: string): string => {
  const xc = b.sub(x, b.reduceMean(x, [-1], true))
  const variance = b.reduceMean(b.mul(xc, xc), [-1], true)
  return b.add(b.mul(b.div(xc, b.sqrt(b.add(variance, b.scalar(LN_EPS)))), gamma), beta)
}

/** GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))). */
export const gelu = (b: GraphBuilder, x: string): string => {
  const x3 = b.mul(b.mul(x, x), x)
  const inner = b.mul(b.add(x, b.mul(x3, b.scalar(0.044715))), b.scalar(Math.sqrt(2 / Math.PI)))
  return b.mul(b.mul(x, b.scalar(0.5)), b.add(b.tanh(inner), b.scalar(1)))
}

/** Token + learned position embeddings: tokens [B, T], positions [T] → [B, T, d]. */
export const embedding = (b: GraphBuilder, tokens: string, positions: string, tok: string, pos: string): string =>
  b.add(b.gather(tok, tokens), b.gather(pos, positions))

export interface AttentionWeights {
  readonly lnWeight: string
  readonly lnBias: string
  readonly wq: string
  readonly wk: string
  readonly wv: string
  readonly wo: string
}

/** Keys and values of earlier positions, [B, H, P, dh] each, as the decoding step carries them. */
export interface PastKeys {
  readonly k: string
  readonly v: string
}

/** Attention's residual output, and the keys and values it attended to (past ones first). */
const attend = (b: GraphBuilder, x: string, mask: string, w: AttentionWeights, heads: number, dModel: number, past?: PastKeys) => {
  const dh = dModel / heads
  const xn = layerNorm(b, x, w.lnWeight, w.lnBias)
  const split = (v: string) => b.transpose(b.reshape(v, [0, 0, heads, dh]), [0, 2, 1, 3]) // [B, H, T, dh]
  const q = split(b.matmul(xn, w.wq))
  const k = past === undefined ? split(b.matmul(xn, w.wk)) : b.concat([past.k, split(b.matmul(xn, w.wk))], 2)
  const v = past === undefined ? split(b.matmul(xn, w.wv)) : b.concat([past.v, split(b.matmul(xn, w.wv))], 2)
  const scores = b.add(b.mul(b.matmul(q, b.transpose(k, [0, 1, 3, 2])), b.scalar(1 / Math.sqrt(dh))), mask)
  const ctx = b.matmul(b.softmax(scores, -1), v) // [B, H, T, dh]
  const merged = b.reshape(b.transpose(ctx, [0, 2, 1, 3]), [0, 0, dModel])
  return { y: b.add(x, b.matmul(merged, w.wo)), k, v }
}

/**
 * Pre-LN causal multi-head self-attention with its residual: x + Wo·attn(LN(x)).
 * x [B, T, d]; mask [T, T] is additive (0 on and below the diagonal, MASKED above).
 */
export const attention = (b: GraphBuilder, x: string, mask: string, w: AttentionWeights, heads: number, dModel: number): string =>
  attend(b, x, mask, w, heads, dModel).y

/**
 * The same attention for new positions only (x [B, S, d]), attending to the keys and values of the
 * positions before them (`past`) and to each other; mask [S, P + S]. Returns the output and the
 * keys and values of all P + S positions, for the next step.
 */
export const attentionWithPast = (b: GraphBuilder, x: string, past: PastKeys, mask: string, w: AttentionWeights, heads: number, dModel: number) =>
  attend(b, x, mask, w, heads, dModel, past)

/** Router: xn = LN(h) (the experts' input) and probs = softmax(xn W) over experts. h [N, d]. */
export const router = (b: GraphBuilder, h: string, lnWeight: string, lnBias: string, w: string): { xn: string; probs: string } => {
  const xn = layerNorm(b, h, lnWeight, lnBias)
  return { xn, probs: b.softmax(b.matmul(xn, w), -1) }
}

/** Gate weights: the router probabilities of the selected experts (mask 1), renormalised to sum to 1. */
export const gates = (b: GraphBuilder, probs: string, mask: string): string => {
  const kept = b.mul(probs, mask)
  return b.div(kept, b.reduceSum(kept, [-1], true))
}

export interface ExpertWeights {
  readonly w1: string
  readonly b1: string
  readonly w2: string
  readonly b2: string
}

/** Expert FFN: GELU(x W1 + b1) W2 + b2. x [N, d]. */
export const expertFfn = (b: GraphBuilder, x: string, w: ExpertWeights): string =>
  b.add(b.matmul(gelu(b, b.add(b.matmul(x, w.w1), w.b1)), w.w2), w.b2)

/** Output head: logits = LN(h) W. */
export const head = (b: GraphBuilder, h: string, lnWeight: string, lnBias: string, w: string): string =>
  b.matmul(layerNorm(b, h, lnWeight, lnBias), w)

/**
 * Weighted cross-entropy: Σ_{b,t} weight[b,t] · −log softmax(logits)[b,t,target], with the target
 * given one-hot [B, T, V]. Weights of 1/(B·T) give the mean; 0 masks a position out.
 */
export const crossEntropy = (b: GraphBuilder, logits: string, onehot: string, weights: string): string => {
  const z = b.sub(logits, b.reduceMaxNoGrad(logits, [-1], true)) // stabiliser: the gradient does not depend on it
  const logp = b.sub(z, b.log(b.reduceSum(b.exp(z), [-1], true)))
  const nll = b.neg(b.reduceSum(b.mul(logp, onehot), [-1], false))
  return b.reduceSum(b.mul(nll, weights), [0, 1], false)
}
