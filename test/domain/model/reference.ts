/**
 * A plain TypeScript (float64) forward pass of blyan-moe, written independently of the ONNX graphs,
 * to check them against. Also the baseline of bench/model.ts.
 */
import type { TokenBatch } from "../../../domain/model/forward.ts"
import { attentionPart, EMBEDDING, expertPart, HEAD, routerPart } from "../../../domain/model/spec.ts"
import type { ModelWeights } from "../../../domain/model/tensor.ts"

const EPS = 1e-5

const w = (weights: ModelWeights, part: string, tensor: string): Float32Array => {
  const t = weights.parts.get(part)?.tensors[tensor]
  if (t === undefined) throw new Error(`missing ${part}/${tensor}`)
  return t.data
}

/** out[n, m] = a[n, k] · b[k, m] (+ bias[m]) */
const matmul = (a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number, bias?: ArrayLike<number>): Float64Array => {
  const out = new Float64Array(n * m)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = bias === undefined ? 0 : bias[j]!
      for (let x = 0; x < k; x++) s += a[i * k + x]! * b[x * m + j]!
      out[i * m + j] = s
    }
  }
  return out
}

const layerNorm = (x: ArrayLike<number>, n: number, d: number, g: ArrayLike<number>, b: ArrayLike<number>): Float64Array => {
  const out = new Float64Array(n * d)
  for (let i = 0; i < n; i++) {
    let mean = 0
    for (let c = 0; c < d; c++) mean += x[i * d + c]!
    mean /= d
    let v = 0
    for (let c = 0; c < d; c++) v += (x[i * d + c]! - mean) ** 2
    const inv = 1 / Math.sqrt(v / d + EPS)
    for (let c = 0; c < d; c++) out[i * d + c] = (x[i * d + c]! - mean) * inv * g[c]! + b[c]!
  }
  return out
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))

const softmaxInPlace = (row: Float64Array) => {
  let m = -Infinity
  for (const v of row) m = Math.max(m, v)
  let s = 0
  for (let i = 0; i < row.length; i++) s += row[i] = Math.exp(row[i]! - m)
  for (let i = 0; i < row.length; i++) row[i] = row[i]! / s
}

export interface ReferenceResult {
  /** [batch, seq, 256] */
  readonly logits: Float64Array
  /** [layers, tokens, topK] */
  readonly experts: Int32Array
  readonly gates: Float64Array
  /** The smallest gap, over tokens and layers, between the k-th and (k+1)-th router probability. */
  readonly minRoutingMargin: number
}

export const referenceForward = (weights: ModelWeights, batch: TokenBatch): ReferenceResult => {
  const s = weights.spec
  const { batch: B, seq: T } = batch
  const N = B * T
  const d = s.dModel
  const H = s.heads
  const dh = d / H
  const E = s.experts
  const K = s.topK
  const tok = w(weights, EMBEDDING, "tok")
  const pos = w(weights, EMBEDDING, "pos")
  let x = new Float64Array(N * d)
  for (let i = 0; i < N; i++) {
    const t = i % T
    for (let c = 0; c < d; c++) x[i * d + c] = tok[batch.tokens[i]! * d + c]! + pos[t * d + c]!
  }
  const experts = new Int32Array(s.layers * N * K)
  const gatesOut = new Float64Array(s.layers * N * K)
  let minMargin = Infinity
  for (let l = 0; l < s.layers; l++) {
    // attention
    const ap = attentionPart(l)
    const xn = layerNorm(x, N, d, w(weights, ap, "ln.weight"), w(weights, ap, "ln.bias"))
    const q = matmul(xn, w(weights, ap, "wq"), N, d, d)
    const k = matmul(xn, w(weights, ap, "wk"), N, d, d)
    const v = matmul(xn, w(weights, ap, "wv"), N, d, d)
    const ctx = new Float64Array(N * d)
    const row = new Float64Array(T)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < T; i++) {
          const sub = row.subarray(0, i + 1)
          for (let j = 0; j <= i; j++) {
            let dot = 0
            for (let c = 0; c < dh; c++) dot += q[(b * T + i) * d + h * dh + c]! * k[(b * T + j) * d + h * dh + c]!
            sub[j] = dot / Math.sqrt(dh)
          }
          softmaxInPlace(sub)
          for (let c = 0; c < dh; c++) {
            let acc = 0
            for (let j = 0; j <= i; j++) acc += sub[j]! * v[(b * T + j) * d + h * dh + c]!
            ctx[(b * T + i) * d + h * dh + c] = acc
          }
        }
      }
    }
    const attnOut = matmul(ctx, w(weights, ap, "wo"), N, d, d)
    const hRes = new Float64Array(N * d)
    for (let i = 0; i < N * d; i++) hRes[i] = x[i]! + attnOut[i]!
    // router
    const rp = routerPart(l)
    const hn = layerNorm(hRes, N, d, w(weights, rp, "ln.weight"), w(weights, rp, "ln.bias"))
    const probs = matmul(hn, w(weights, rp, "w"), N, d, E)
    const next = Float64Array.from(hRes)
    for (let i = 0; i < N; i++) {
      const p = probs.subarray(i * E, i * E + E)
      softmaxInPlace(p)
      const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b]! - p[a]! || a - b)
      if (E > K) minMargin = Math.min(minMargin, p[order[K - 1]!]! - p[order[K]!]!)
      const chosen = order.slice(0, K)
      const total = chosen.reduce((a, e) => a + p[e]!, 0)
      chosen.forEach((e, j) => {
        const gate = p[e]! / total
        experts[(l * N + i) * K + j] = e
        gatesOut[(l * N + i) * K + j] = gate
        const ep = expertPart(l, e)
        const hid = matmul(hn.subarray(i * d, i * d + d), w(weights, ep, "w1"), 1, d, s.dFF, w(weights, ep, "b1")).map(gelu)
        const y = matmul(hid, w(weights, ep, "w2"), 1, s.dFF, d, w(weights, ep, "b2"))
        for (let c = 0; c < d; c++) next[i * d + c] = next[i * d + c]! + gate * y[c]!
      })
    }
    x = next
  }
  const hn = layerNorm(x, N, d, w(weights, HEAD, "ln.weight"), w(weights, HEAD, "ln.bias"))
  return { logits: matmul(hn, w(weights, HEAD, "w"), N, d, s.vocab), experts, gates: gatesOut, minRoutingMargin: minMargin }
}

/** Mean next-token cross-entropy of reference logits. */
export const referenceLoss = (logits: Float64Array, targets: ArrayLike<number>, vocab = 256): number => {
  let total = 0
  for (let i = 0; i < targets.length; i++) {
    const row = Float64Array.from(logits.subarray(i * vocab, (i + 1) * vocab))
    softmaxInPlace(row)
    total -= Math.log(row[targets[i]!]!)
  }
  return total / targets.length
}
