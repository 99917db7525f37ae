/**
 * Training over the Executor port: forward through every part, the loss, then backward through
 * every part in reverse (head, then per layer experts, router, attention, then the embedding),
 * then AdamW. The router learns through the gate weights: d loss / d gate of a token's expert is
 * the dot product of the upstream gradient with that expert's output.
 */
import { Effect } from "effect"
import type { AdamWConfig, AdamWState, Gradients } from "./adamw.ts"
import { adamwUpdate } from "./adamw.ts"
import type { Executor, TensorValue } from "../ports/executor.ts"
import type { FloatArray, LayerActivations, ModelError, Routing, TokenBatch } from "./forward.ts"
import { allocFloat, floatFeed, floats, forwardTrace, InvalidModelInput, partFeeds, passDims, runGraph } from "./forward.ts"
import type { ModelGraphs } from "./onnx/graphs.ts"
import { ATTENTION_WEIGHTS, EMBEDDING_WEIGHTS, EXPERT_WEIGHTS, HEAD_WEIGHTS, ROUTER_WEIGHTS } from "./onnx/graphs.ts"
import { attentionPart, EMBEDDING, expertPart, HEAD, routerPart } from "./spec.ts"
import type { ModelWeights } from "./tensor.ts"

/** Next-token training data: targets[b, t] is the token after inputs[b, t]. */
export interface TrainBatch extends TokenBatch {
  readonly targets: ArrayLike<number>
  /** Per-position loss weights [batch, seq]; default 1/(batch·seq) each (the mean). */
  readonly weights?: ArrayLike<number>
}

const checkTargets = (graphs: ModelGraphs, b: TrainBatch): Effect.Effect<void, InvalidModelInput> => {
  const n = b.batch * b.seq
  if (b.targets.length !== n) return Effect.fail(new InvalidModelInput({ message: `invalid model input: ${b.targets.length} targets for ${n} tokens` }))
  for (let i = 0; i < n; i++) {
    const t = b.targets[i]!
    if (!Number.isInteger(t) || t < 0 || t >= graphs.spec.vocab) return Effect.fail(new InvalidModelInput({ message: `invalid model input: target ${t} at ${i} out of range` }))
  }
  if (b.weights !== undefined && b.weights.length !== n) return Effect.fail(new InvalidModelInput({ message: `invalid model input: ${b.weights.length} loss weights for ${n} tokens` }))
  return Effect.void
}

const lossFeeds = (graphs: ModelGraphs, b: TrainBatch) => {
  const n = b.batch * b.seq
  const V = graphs.spec.vocab
  const onehot = allocFloat(graphs.precision, n * V)
  for (let i = 0; i < n; i++) onehot[i * V + b.targets[i]!] = 1
  const weights = b.weights ?? new Float64Array(n).fill(1 / n)
  return {
    onehot: floatFeed(graphs.precision, onehot, [b.batch, b.seq, V]),
    weights: floatFeed(graphs.precision, weights, [b.batch, b.seq])
  }
}

/** The loss of a batch, without gradients. */
export const evaluateLoss = (graphs: ModelGraphs, weights: ModelWeights, batch: TrainBatch): Effect.Effect<number, ModelError, Executor> =>
  Effect.gen(function* () {
    yield* checkTargets(graphs, batch)
    const trace = yield* forwardTrace(graphs, weights, batch)
    const out = yield* runGraph(graphs.head.loss, {
      h: floatFeed(graphs.precision, trace.final, [batch.batch, batch.seq, graphs.spec.dModel]),
      ...partFeeds(graphs, weights, HEAD, HEAD_WEIGHTS),
      ...lossFeeds(graphs, batch)
    })
    return floats(out.loss)[0]!
  })

export interface LossAndGradients {
  readonly loss: number
  /** Part → tensor → gradient; experts that served no token have none. */
  readonly grads: Gradients
  readonly routing: Routing
}

const gradsOf = (out: Record<string, TensorValue>, names: ReadonlyArray<string>): Record<string, FloatArray> =>
  Object.fromEntries(names.map((n) => [n, floats(out[`grad.${n}`])]))

/** The head over the final residual stream: the batch's loss, the head's gradients, and d loss / d final. */
export const headBackward = (graphs: ModelGraphs, weights: ModelWeights, final: FloatArray, batch: TrainBatch) =>
  Effect.gen(function* () {
    yield* checkTargets(graphs, batch)
    const { precision, B, T, d } = passDims(graphs, batch)
    const out = yield* runGraph(graphs.head.backward, {
      h: floatFeed(precision, final, [B, T, d]),
      ...partFeeds(graphs, weights, HEAD, HEAD_WEIGHTS),
      ...lossFeeds(graphs, batch)
    })
    return { loss: floats(out.loss)[0]!, grads: gradsOf(out, HEAD_WEIGHTS), dx: floats(out["grad.h"]) }
  })

/**
 * Layer `l` backward from d loss / d its output (`dOut`): the gradients of its experts, router and
 * attention, and d loss / d its input.
 */
const layerBackward = (
  graphs: ModelGraphs,
  weights: ModelWeights,
  l: number,
  act: LayerActivations,
  dOut: FloatArray,
  mask: TensorValue,
  batch: { readonly batch: number; readonly seq: number }
) =>
  Effect.gen(function* () {
    const { precision, B, T, N, d, E, K } = passDims(graphs, batch)
    const grads = new Map<string, Record<string, FloatArray>>()
    // Through the gated sum out = h + Σ gate·y_e: each expert gets gate·dOut, each gate dOut·y_e.
    const dxn = allocFloat(precision, N * d)
    const dgates = allocFloat(precision, N * E)
    const expertGrads = yield* Effect.forEach(
      act.dispatch,
      (de) =>
        Effect.gen(function* () {
          const n = de.rows.length
          const dy = allocFloat(precision, n * d)
          for (let r = 0; r < n; r++) {
            const tok = de.rows[r]!
            const g = act.gates[tok * K + de.slots[r]!]!
            let dot = 0
            for (let c = 0; c < d; c++) {
              dy[r * d + c] = g * dOut[tok * d + c]!
              dot += dOut[tok * d + c]! * de.y[r * d + c]!
            }
            dgates[tok * E + de.expert] = dot
          }
          const out = yield* runGraph(graphs.expert.backward, {
            x: floatFeed(precision, de.x, [n, d]),
            ...partFeeds(graphs, weights, expertPart(l, de.expert), EXPERT_WEIGHTS),
            "grad.y": floatFeed(precision, dy, [n, d])
          })
          return { de, out }
        }),
      { concurrency: "unbounded" }
    )
    for (const { de, out } of expertGrads) {
      grads.set(expertPart(l, de.expert), gradsOf(out, EXPERT_WEIGHTS))
      const gx = floats(out["grad.x"])
      for (let r = 0; r < de.rows.length; r++) {
        const tok = de.rows[r]!
        for (let c = 0; c < d; c++) dxn[tok * d + c] = dxn[tok * d + c]! + gx[r * d + c]!
      }
    }
    const maskF = allocFloat(precision, N * E)
    for (let i = 0; i < N * E; i++) maskF[i] = act.mask[i]!
    const rOut = yield* runGraph(graphs.router.backward, {
      h: floatFeed(precision, act.h, [N, d]),
      mask: floatFeed(precision, maskF, [N, E]),
      ...partFeeds(graphs, weights, routerPart(l), ROUTER_WEIGHTS),
      "grad.xn": floatFeed(precision, dxn, [N, d]),
      "grad.gates": floatFeed(precision, dgates, [N, E])
    })
    grads.set(routerPart(l), gradsOf(rOut, ROUTER_WEIGHTS))
    // The residual passes dOut straight to h; the router adds its share.
    const dh = allocFloat(precision, N * d)
    const gh = floats(rOut["grad.h"])
    for (let i = 0; i < N * d; i++) dh[i] = dOut[i]! + gh[i]!
    const aOut = yield* runGraph(graphs.attention.backward, {
      x: floatFeed(precision, act.x, [B, T, d]),
      mask,
      ...partFeeds(graphs, weights, attentionPart(l), ATTENTION_WEIGHTS),
      "grad.y": floatFeed(precision, dh, [B, T, d])
    })
    grads.set(attentionPart(l), gradsOf(aOut, ATTENTION_WEIGHTS))
    return { grads, dx: floats(aOut["grad.x"]) }
  })

/**
 * Layers from the last of `acts` down to `start` (`acts[i]` is layer start + i's), backward from
 * d loss / d the last one's output: their parts' gradients added to `grads`, in that order, and
 * d loss / d the first one's input.
 */
export const layersBackward = (
  graphs: ModelGraphs,
  weights: ModelWeights,
  start: number,
  acts: ReadonlyArray<LayerActivations>,
  dOut: FloatArray,
  mask: TensorValue,
  batch: { readonly batch: number; readonly seq: number },
  grads: Map<string, Record<string, FloatArray>>
) =>
  Effect.gen(function* () {
    let dx = dOut
    for (let i = acts.length - 1; i >= 0; i--) {
      const layer = yield* layerBackward(graphs, weights, start + i, acts[i]!, dx, mask, batch)
      for (const [part, g] of layer.grads) grads.set(part, g)
      dx = layer.dx
    }
    return dx
  })

/** The embedding's gradients from d loss / d the first layer's input. */
export const embeddingBackward = (graphs: ModelGraphs, weights: ModelWeights, tokens: TensorValue, positions: TensorValue, dx: FloatArray, batch: { readonly batch: number; readonly seq: number }) =>
  Effect.gen(function* () {
    const { precision, B, T, d } = passDims(graphs, batch)
    const out = yield* runGraph(graphs.embedding.backward, {
      tokens,
      positions,
      ...partFeeds(graphs, weights, EMBEDDING, EMBEDDING_WEIGHTS),
      "grad.x": floatFeed(precision, dx, [B, T, d])
    })
    return gradsOf(out, EMBEDDING_WEIGHTS)
  })

export const lossAndGradients = (graphs: ModelGraphs, weights: ModelWeights, batch: TrainBatch): Effect.Effect<LossAndGradients, ModelError, Executor> =>
  Effect.gen(function* () {
    yield* checkTargets(graphs, batch)
    const trace = yield* forwardTrace(graphs, weights, batch)
    const head = yield* headBackward(graphs, weights, trace.final, batch)
    const grads = new Map<string, Record<string, FloatArray>>([[HEAD, head.grads]])
    const dx = yield* layersBackward(graphs, weights, 0, trace.layers, head.dx, trace.mask, batch, grads)
    grads.set(EMBEDDING, yield* embeddingBackward(graphs, weights, trace.tokens, trace.positions, dx, batch))
    return { loss: head.loss, grads, routing: trace.routing }
  })

export interface TrainStepResult {
  readonly weights: ModelWeights
  readonly state: AdamWState
  readonly loss: number
  readonly gradNorm: number
}

export interface TrainOptions {
  /** Only parts for which this holds are updated (e.g. one contributed expert); all by default. */
  readonly trainable?: (part: string) => boolean
}

/** One optimisation step on one batch; returns the loss before the update. */
export const trainStep = (
  graphs: ModelGraphs,
  weights: ModelWeights,
  state: AdamWState,
  batch: TrainBatch,
  config: AdamWConfig,
  options: TrainOptions = {}
): Effect.Effect<TrainStepResult, ModelError, Executor> =>
  Effect.map(lossAndGradients(graphs, weights, batch), ({ loss, grads }) => {
    const r = adamwUpdate(weights, grads, state, config, options.trainable)
    return { weights: r.weights, state: r.state, loss, gradNorm: r.gradNorm }
  })
