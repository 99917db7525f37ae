/**
 * One pipeline stage's share of a training step: forward and backward over its own contiguous
 * layers, the first stage with the embedding, the last with the head and the loss. A stage's
 * forward takes the tokens (first) or the previous stage's activations, and keeps what its
 * backward needs; its backward takes the targets (last) or the next stage's gradient, and gives
 * its parts' gradients and, but for the first, the gradient to send back.
 */
import { Effect } from "effect"
import type { Executor, TensorValue } from "../ports/executor.ts"
import type { Gradients } from "./adamw.ts"
import { causalMaskFeed, embedForward, InvalidModelInput, layerForward, passDims, validateBatch, type FloatArray, type LayerActivations, type ModelError } from "./forward.ts"
import type { ModelGraphs } from "./onnx/graphs.ts"
import { EMBEDDING, HEAD, parsePartName } from "./spec.ts"
import type { ModelWeights } from "./tensor.ts"
import { embeddingBackward, headBackward, layersBackward, type TrainBatch } from "./train.ts"

/** A stage's layers, first to last (inclusive). */
export type StageLayers = { readonly start: number; readonly end: number }

/** A microbatch's shape: its rows and their length. */
export type MicrobatchDims = { readonly batch: number; readonly seq: number }

/** What a stage's forward kept for its backward. */
export interface StageSaved {
  readonly embedded?: { readonly tokens: TensorValue; readonly positions: TensorValue }
  readonly mask: TensorValue
  readonly layers: ReadonlyArray<LayerActivations>
  readonly out: FloatArray
}

const firstOf = (r: StageLayers) => r.start === 0
const lastOf = (graphs: ModelGraphs, r: StageLayers) => r.end === graphs.spec.layers - 1

const badInput = (message: string) => Effect.fail(new InvalidModelInput({ message: `invalid stage input: ${message}` }))

/** The parts a stage owns (and updates): its layers', and the embedding or head at the ends. */
export const stageOwns = (graphs: ModelGraphs, r: StageLayers) => (part: string) => {
  const ref = parsePartName(part)
  if (ref === undefined) return false
  if (ref.kind === "embedding") return firstOf(r)
  if (ref.kind === "head") return lastOf(graphs, r)
  return ref.layer >= r.start && ref.layer <= r.end
}

/** The stage's forward over a microbatch: its output activations ([B, T, d]) and what its backward needs. */
export const stageForward = (
  graphs: ModelGraphs,
  weights: ModelWeights,
  r: StageLayers,
  dims: MicrobatchDims,
  input: { readonly tokens: ArrayLike<number> } | { readonly x: FloatArray }
): Effect.Effect<StageSaved, ModelError, Executor> =>
  Effect.gen(function* () {
    const { precision, N, d, T } = passDims(graphs, dims)
    let x: FloatArray
    let embedded: StageSaved["embedded"]
    let mask: TensorValue
    if ("tokens" in input) {
      if (!firstOf(r)) return yield* badInput(`stage ${r.start}..${r.end} takes activations, not tokens`)
      const batch = { ...dims, tokens: input.tokens }
      yield* validateBatch(weights, batch)
      const e = yield* embedForward(graphs, weights, batch)
      x = e.x
      mask = e.mask
      embedded = { tokens: e.tokens, positions: e.positions }
    } else {
      if (firstOf(r)) return yield* badInput("the first stage takes tokens")
      if (input.x.length !== N * d) return yield* badInput(`${input.x.length} activations for ${dims.batch}×${dims.seq} positions of width ${d}`)
      x = input.x
      mask = causalMaskFeed(precision, T)
    }
    const layers: LayerActivations[] = []
    for (let l = r.start; l <= r.end; l++) {
      const layer = yield* layerForward(graphs, weights, l, x, mask, dims)
      layers.push(layer.act)
      x = layer.next
    }
    return { ...(embedded === undefined ? {} : { embedded }), mask, layers, out: x }
  })

/**
 * The stage's backward for a microbatch whose forward it saved: its parts' gradients, the loss
 * (last stage), and d loss / d its input to send back (all but the first).
 */
export const stageBackward = (
  graphs: ModelGraphs,
  weights: ModelWeights,
  r: StageLayers,
  dims: MicrobatchDims,
  saved: StageSaved,
  from: { readonly targets: ArrayLike<number>; readonly lossWeights: ArrayLike<number> } | { readonly dOut: FloatArray }
): Effect.Effect<{ readonly grads: Gradients; readonly loss?: number; readonly dIn?: FloatArray }, ModelError, Executor> =>
  Effect.gen(function* () {
    const { N, d } = passDims(graphs, dims)
    const grads = new Map<string, Record<string, FloatArray>>()
    let dx: FloatArray
    let loss: number | undefined
    if ("targets" in from) {
      if (!lastOf(graphs, r)) return yield* badInput(`stage ${r.start}..${r.end} takes a gradient, not targets`)
      const head = yield* headBackward(graphs, weights, saved.out, { ...dims, tokens: [], targets: from.targets, weights: from.lossWeights })
      grads.set(HEAD, head.grads)
      dx = head.dx
      loss = head.loss
    } else {
      if (lastOf(graphs, r)) return yield* badInput("the last stage takes targets")
      if (from.dOut.length !== N * d) return yield* badInput(`${from.dOut.length} gradient values for ${dims.batch}×${dims.seq} positions of width ${d}`)
      dx = from.dOut
    }
    dx = yield* layersBackward(graphs, weights, r.start, saved.layers, dx, saved.mask, dims, grads)
    if (saved.embedded !== undefined) {
      grads.set(EMBEDDING, yield* embeddingBackward(graphs, weights, saved.embedded.tokens, saved.embedded.positions, dx, dims))
      return { grads, ...(loss === undefined ? {} : { loss }) }
    }
    return { grads, dIn: dx, ...(loss === undefined ? {} : { loss }) }
  })

/**
 * A step's batch as `m` microbatches of equal rows, each position keeping its weight in the
 * whole batch's loss: the microbatches' losses and gradients add up to the batch's.
 */
export const microbatches = (batch: TrainBatch, m: number): Effect.Effect<ReadonlyArray<TrainBatch & { readonly weights: ArrayLike<number> }>, InvalidModelInput> => {
  if (!Number.isInteger(m) || m < 1 || batch.batch % m !== 0) return badInput(`${batch.batch} rows do not split into ${m} equal microbatches`)
  const rows = batch.batch / m
  const n = rows * batch.seq
  const weights = batch.weights ?? new Float64Array(batch.batch * batch.seq).fill(1 / (batch.batch * batch.seq))
  const slice = (xs: ArrayLike<number>, i: number) => Array.from({ length: n }, (_, k) => xs[i * n + k]!)
  return Effect.succeed(
    Array.from({ length: m }, (_, i) => ({ batch: rows, seq: batch.seq, tokens: slice(batch.tokens, i), targets: slice(batch.targets, i), weights: slice(weights, i) }))
  )
}

/** `layers` split into `stages` contiguous stages as even as they go (the earlier stages one layer longer). */
export const evenStages = (layers: number, stages: number): ReadonlyArray<StageLayers> => {
  const base = Math.floor(layers / stages)
  const longer = layers % stages
  const out: StageLayers[] = []
  let start = 0
  for (let s = 0; s < stages; s++) {
    const n = base + (s < longer ? 1 : 0)
    out.push({ start, end: start + n - 1 })
    start += n
  }
  return out
}
