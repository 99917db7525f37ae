/**
 * AdamW (decoupled weight decay) on the model's f32 tensors, with optional global-norm gradient
 * clipping. Pure: returns new tensors and state; untouched parts are shared, not copied.
 * Tensors without a gradient this step (an expert no token was routed to) are left as they are,
 * moments included; bias correction counts each tensor's own steps. Updated values are rounded
 * to each tensor's storage dtype, so the weights in memory are exactly those its block will hold.
 */
import { roundToDtype } from "./half.ts"
import type { ModelWeights, Part, Tensor } from "./tensor.ts"

export interface AdamWConfig {
  readonly lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  /** Applied to matrices only (rank ≥ 2), not to norms and biases. */
  readonly weightDecay: number
  /** Clip the global gradient norm to this; none when undefined. */
  readonly maxGradNorm?: number
}

export const defaultAdamW: AdamWConfig = { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 }

export interface Moments {
  readonly m: Float32Array
  readonly v: Float32Array
  readonly t: number
}

export interface AdamWState {
  /** Keyed by `part/tensor`. */
  readonly moments: ReadonlyMap<string, Moments>
}

export const initAdamW = (): AdamWState => ({ moments: new Map() })

/** Gradients by part, then tensor name. */
export type Gradients = ReadonlyMap<string, Readonly<Record<string, ArrayLike<number>>>>

/** The sum of squares of every gradient: what a pipeline's stages add up for the global norm. */
export const gradientSquares = (grads: Gradients): number => {
  let s = 0
  for (const tensors of grads.values()) {
    for (const g of Object.values(tensors)) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!
  }
  return s
}

export const gradientNorm = (grads: Gradients): number => Math.sqrt(gradientSquares(grads))

/** `more` added into `into`, tensor by tensor (a microbatch's gradients into the step's). */
export const addGradients = (into: Map<string, Record<string, Float64Array>>, more: Gradients): void => {
  for (const [part, tensors] of more) {
    const sums = into.get(part) ?? {}
    for (const [name, g] of Object.entries(tensors)) {
      const sum = sums[name] ?? new Float64Array(g.length)
      for (let i = 0; i < g.length; i++) sum[i] = sum[i]! + g[i]!
      sums[name] = sum
    }
    into.set(part, sums)
  }
}

export interface AdamWResult {
  readonly weights: ModelWeights
  readonly state: AdamWState
  /** The global gradient norm before clipping. */
  readonly gradNorm: number
}

export const adamwUpdate = (
  weights: ModelWeights,
  grads: Gradients,
  state: AdamWState,
  config: AdamWConfig,
  trainable: (part: string) => boolean = () => true,
  /** The global norm when `grads` are a share of the step's (a pipeline stage's): clipping is the whole step's. */
  norm?: number
): AdamWResult => {
  const used = new Map([...grads].filter(([p]) => trainable(p)))
  const gradNorm = norm ?? gradientNorm(used)
  const scale = config.maxGradNorm !== undefined && gradNorm > config.maxGradNorm ? config.maxGradNorm / gradNorm : 1
  const parts = new Map(weights.parts)
  const moments = new Map(state.moments)
  const { lr, beta1, beta2, eps, weightDecay } = config
  for (const [partName, tensorGrads] of used) {
    const part = weights.parts.get(partName)
    if (part === undefined) throw new Error(`gradient for unknown part ${partName}`)
    const tensors: Record<string, Tensor> = { ...part.tensors }
    for (const [name, g] of Object.entries(tensorGrads)) {
      const t = part.tensors[name]
      if (t === undefined) throw new Error(`gradient for unknown tensor ${partName}/${name}`)
      if (g.length !== t.data.length) throw new Error(`gradient for ${partName}/${name} has ${g.length} values, tensor ${t.data.length}`)
      const key = `${partName}/${name}`
      const prev = moments.get(key)
      const m = prev === undefined ? new Float32Array(g.length) : Float32Array.from(prev.m)
      const v = prev === undefined ? new Float32Array(g.length) : Float32Array.from(prev.v)
      const step = (prev?.t ?? 0) + 1
      const c1 = 1 - beta1 ** step
      const c2 = 1 - beta2 ** step
      const decay = t.shape.length >= 2 ? lr * weightDecay : 0
      const p = new Float32Array(t.data.length)
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * scale
        m[i] = beta1 * m[i]! + (1 - beta1) * gi
        v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi
        const w = t.data[i]!
        p[i] = w - decay * w - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps)
      }
      tensors[name] = { dtype: t.dtype, shape: t.shape, data: t.dtype === "f32" ? p : roundToDtype(p, t.dtype) }
      moments.set(key, { m, v, t: step })
    }
    const next: Part = { name: partName, tensors }
    parts.set(partName, next)
  }
  return { weights: { spec: weights.spec, parts }, state: { moments }, gradNorm }
}
