/** Shared helpers of the model tests: an executor, random weights, and a finite-difference gradient check. */
import { Effect } from "effect"
import { OnnxExecutorLive } from "../../../adapters/executor/onnxruntime.ts"
import type { Executor, ExecutionFailed, TensorValue } from "../../../domain/ports/executor.ts"
import { vjp } from "../../../domain/model/onnx/autodiff.ts"
import { compile } from "../../../domain/model/onnx/graphs.ts"
import type { Graph } from "../../../domain/model/onnx/ir.ts"
import { initWeights } from "../../../domain/model/init.ts"
import { hashString, makePrng } from "../../../domain/model/prng.ts"
import type { ModelSpec } from "../../../domain/model/spec.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"
import type { ModelWeights, Part, Tensor } from "../../../domain/model/tensor.ts"
import { expertForward, runGraph, type FloatArray } from "../../../domain/model/forward.ts"
import type { ModelGraphs } from "../../../domain/model/onnx/graphs.ts"
import { expertPart } from "../../../domain/model/spec.ts"

/** A model small enough for many test runs. */
export const tinySpec: ModelSpec = { ...defaultSpec, name: "blyan-moe-test", context: 8, dModel: 16, heads: 2, layers: 2, experts: 4, topK: 2, dFF: 32, seed: 7 }

/**
 * The executor layers of the model tests: one per test file or suite, given to `layer(...)` of
 * @effect/vitest (or provided to a single test for a fresh executor). f64 graphs need the "basic"
 * optimisation level (onnxruntime's fused kernels are f32 only); f32 graphs run as in production.
 */
export const TestExecutor = OnnxExecutorLive({ device: "cpu", intraOpThreads: 1 })
export const TestExecutor64 = OnnxExecutorLive({ device: "cpu", intraOpThreads: 1, optimization: "basic" })

/** Weights with every tensor random (norm gains around 1), so biases and norms are exercised too. */
export const randomWeights = (spec: ModelSpec, seed: number, scale = 0.3): ModelWeights => {
  const base = initWeights(spec)
  const parts = new Map<string, Part>()
  for (const [name, part] of base.parts) {
    const rng = makePrng(seed, hashString(name))
    const tensors: Record<string, Tensor> = {}
    for (const [tn, t] of Object.entries(part.tensors)) {
      const bound = tn === "tok" || tn === "pos" || tn.startsWith("ln") || tn.startsWith("b") ? scale : scale * Math.sqrt(3 / t.shape[0]!) * 1.5
      const data = Float32Array.from(t.data, () => (tn === "ln.weight" ? 1 : 0) + rng.uniform(-bound, bound))
      tensors[tn] = { ...t, data }
    }
    parts.set(name, { name, tensors })
  }
  return { spec, parts }
}

export const f64 = (data: ArrayLike<number>, dims: ReadonlyArray<number>): TensorValue => ({ type: "float64", dims, data: Float64Array.from(data) })
export const i64 = (data: ArrayLike<number>, dims: ReadonlyArray<number>): TensorValue => ({
  type: "int64",
  dims,
  data: BigInt64Array.from(Array.from(data, (v) => BigInt(v)))
})

export interface GradCheckResult {
  /** input → list of [index, analytic, numeric] */
  readonly checked: ReadonlyArray<{ readonly input: string; readonly index: number; readonly analytic: number; readonly numeric: number }>
  readonly maxError: number
}

/**
 * Checks the VJP graph of an f64 forward graph against central differences of Σ_out ⟨out, R_out⟩
 * for random R: up to `samples` elements of each `wrt` input are perturbed by ±h. `maxError` is
 * the largest |analytic − numeric| / (atol + rtol·|numeric|): the check passes when it is ≤ 1.
 */
export const gradCheck = (
  graph: Graph,
  wrt: ReadonlyArray<string>,
  feeds: Record<string, TensorValue>,
  opts: { readonly samples?: number; readonly h?: number; readonly rtol?: number; readonly atol?: number; readonly seed?: number } = {}
): Effect.Effect<GradCheckResult, ExecutionFailed, Executor> =>
  Effect.gen(function* () {
    const { samples = 12, h = 1e-6, rtol = 1e-6, atol = 1e-8, seed = 1 } = opts
    const rng = makePrng(seed, hashString(graph.name))
    const fwd = compile(graph)
    const bwd = compile(vjp(graph, wrt))
    const outs = yield* runGraph(fwd, feeds)
    const R: Record<string, Float64Array> = {}
    for (const o of graph.outputs) R[o] = Float64Array.from(outs[o]!.data as Float64Array, () => rng.uniform(-1, 1))
    const objective = (vals: Record<string, TensorValue>) => {
      let s = 0
      for (const o of graph.outputs) {
        const v = vals[o]!.data as Float64Array
        for (let i = 0; i < v.length; i++) s += v[i]! * R[o]![i]!
      }
      return s
    }
    const seeds: Record<string, TensorValue> = {}
    for (const o of graph.outputs) seeds[`grad.${o}`] = f64(R[o]!, outs[o]!.dims)
    const grads = yield* runGraph(bwd, { ...feeds, ...seeds })
    const checked: Array<{ input: string; index: number; analytic: number; numeric: number }> = []
    let maxError = 0
    for (const name of wrt) {
      const base = feeds[name]!
      const n = base.data.length
      const g = grads[`grad.${name}`]!
      if (g.data.length !== n) throw new Error(`grad.${name} has ${g.data.length} values, input ${n}`)
      const idx = n <= samples ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: samples }, () => rng.int(n))
      for (const i of idx) {
        const at = (delta: number) => {
          const data = Float64Array.from(base.data as Float64Array)
          data[i] = data[i]! + delta
          return { ...feeds, [name]: { ...base, data } }
        }
        const plus = objective(yield* runGraph(fwd, at(h)))
        const minus = objective(yield* runGraph(fwd, at(-h)))
        const numeric = (plus - minus) / (2 * h)
        const analytic = (g.data as Float64Array)[i]!
        checked.push({ input: name, index: i, analytic, numeric })
        maxError = Math.max(maxError, Math.abs(analytic - numeric) / (atol + rtol * Math.abs(numeric)))
      }
    }
    return { checked, maxError }
  })

/** An expert of the built-in model as a node hosts it, with the block hash it claims to hold. */
export const hostedBuiltin = (graphs: ModelGraphs, weights: ModelWeights, layer: number, expert: number, block: string) => ({
  layer,
  expert,
  block,
  width: weights.spec.dModel,
  forward: (x: FloatArray, rows: number) => expertForward(graphs, weights, expertPart(layer, expert), x, rows)
})
