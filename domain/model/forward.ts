/**
 * A whole-model forward pass over the Executor port: embedding, then per layer attention, router,
 * top-k expert dispatch, then the head. Each part runs as its own graph, so an answer can name the
 * exact expert blocks that produced it (and, on the network, the node that ran each one).
 *
 * Dispatch: for every token the router's top-k experts run (tokens are gathered per expert) and
 * their outputs are summed, weighted by the gates: the selected router probabilities renormalised
 * to sum to 1. Ties in the selection go to the lower expert index.
 */
import { Effect, Either, Schema } from "effect"
import type { ExecutionFailed, TensorValue } from "../ports/executor.ts"
import { Executor } from "../ports/executor.ts"
import type { CompiledGraph, ModelGraphs, Precision } from "./onnx/graphs.ts"
import { ATTENTION_WEIGHTS, EMBEDDING_WEIGHTS, EXPERT_WEIGHTS, HEAD_WEIGHTS, ROUTER_WEIGHTS } from "./onnx/graphs.ts"
import { MASKED } from "./onnx/layers.ts"
import { attentionPart, EMBEDDING, expertPart, HEAD, routerPart } from "./spec.ts"
import type { ModelWeights } from "./tensor.ts"
import { validatePart } from "./tensor.ts"

export type FloatArray = Float32Array | Float64Array

/** Input the model cannot take (token out of range, sequence longer than the context, ...). */
export class InvalidModelInput extends Schema.TaggedError<InvalidModelInput>()("InvalidModelInput", { message: Schema.String }) {}

/** Token ids, row-major [batch, seq]. */
export interface TokenBatch {
  readonly batch: number
  readonly seq: number
  readonly tokens: ArrayLike<number>
}

/** Which experts each token used in each layer: row-major [layers, tokens, topK], best first. */
export interface Routing {
  readonly layers: number
  readonly tokens: number
  readonly topK: number
  readonly experts: Int32Array
  readonly gates: Float32Array
  /** Per layer, who computed each expert, where a node did (experts computed over the bus). */
  readonly servedBy?: ReadonlyArray<ReadonlyMap<number, Served>>
}

export interface ForwardResult {
  /** [batch, seq, 256] */
  readonly logits: FloatArray
  readonly routing: Routing
}

export type ModelError = ExecutionFailed | InvalidModelInput

/** The experts (index and gate weight) that token `token` (= b·seq + t) used in `layer`. */
export const routeOf = (r: Routing, layer: number, token: number): ReadonlyArray<{ readonly expert: number; readonly gate: number }> => {
  const base = (layer * r.tokens + token) * r.topK
  return Array.from({ length: r.topK }, (_, j) => ({ expert: r.experts[base + j]!, gate: r.gates[base + j]! }))
}

/** Block names of every expert that served at least one token, sorted. */
export const expertsUsed = (r: Routing): ReadonlyArray<string> => {
  const used = new Set<string>()
  for (let l = 0; l < r.layers; l++) {
    for (let i = 0; i < r.tokens * r.topK; i++) used.add(expertPart(l, r.experts[l * r.tokens * r.topK + i]!))
  }
  return [...used].sort()
}

/**
 * Top-k of each row of `probs` ([n, e]): expert indices (ties to the lower index), gates (the
 * selected probabilities renormalised) and the 0/1 selection mask.
 */
export const selectTopK = (probs: ArrayLike<number>, n: number, e: number, k: number) => {
  const experts = new Int32Array(n * k)
  const gates = new Float64Array(n * k)
  const mask = new Uint8Array(n * e)
  for (let i = 0; i < n; i++) {
    let sum = 0
    for (let j = 0; j < k; j++) {
      let best = -1
      let bestP = -Infinity
      for (let x = 0; x < e; x++) {
        const p = probs[i * e + x]!
        if (mask[i * e + x] === 0 && p > bestP) {
          best = x
          bestP = p
        }
      }
      if (best < 0) best = mask.subarray(i * e, i * e + e).indexOf(0) // all NaN: still pick k distinct experts
      mask[i * e + best] = 1
      experts[i * k + j] = best
      gates[i * k + j] = bestP
      sum += bestP
    }
    for (let j = 0; j < k; j++) gates[i * k + j] = sum > 0 ? gates[i * k + j]! / sum : 1 / k
  }
  return { experts, gates, mask }
}

// ---------------------------------------------------------------------------------------------
// feeds

export const allocFloat = (p: Precision, n: number): FloatArray => (p === "f32" ? new Float32Array(n) : new Float64Array(n))

export const floatFeed = (p: Precision, data: ArrayLike<number>, dims: ReadonlyArray<number>): TensorValue =>
  p === "f32"
    ? { type: "float32", dims, data: data instanceof Float32Array ? data : Float32Array.from(data) }
    : { type: "float64", dims, data: data instanceof Float64Array ? data : Float64Array.from(data) }

export const int64Feed = (data: ArrayLike<number>, dims: ReadonlyArray<number>): TensorValue => {
  const out = new BigInt64Array(data.length)
  for (let i = 0; i < data.length; i++) out[i] = BigInt(data[i]!)
  return { type: "int64", dims, data: out }
}

/** The weights of one part as feeds named after its tensors. */
export const partFeeds = (graphs: ModelGraphs, weights: ModelWeights, part: string, names: ReadonlyArray<string>): Record<string, TensorValue> => {
  const p = weights.parts.get(part)
  if (p === undefined) throw new Error(`weights lack part ${part}`)
  const feeds: Record<string, TensorValue> = {}
  for (const n of names) {
    const t = p.tensors[n]
    if (t === undefined) throw new Error(`part ${part} lacks tensor ${n}`)
    feeds[n] = floatFeed(graphs.precision, t.data, t.shape)
  }
  return feeds
}

export const runGraph = (g: CompiledGraph, feeds: Record<string, TensorValue>, fetches: ReadonlyArray<string> = g.outputs) =>
  Effect.flatMap(Executor, (ex) => ex.run({ name: g.name, bytes: g.bytes }, feeds, fetches))

export const floats = (t: TensorValue | undefined): FloatArray => {
  if (t === undefined || t.data instanceof BigInt64Array) throw new Error("expected a float output")
  return t.data
}

/** Additive causal mask [T, T]: 0 where a position may attend (itself and earlier), MASKED above. */
const causalMask = (p: Precision, t: number): FloatArray => {
  const m = allocFloat(p, t * t)
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = MASKED
  return m
}

export const validateBatch = (weights: ModelWeights, batch: TokenBatch): Effect.Effect<void, InvalidModelInput> => {
  const fail = (reason: string) => Effect.fail(new InvalidModelInput({ message: `invalid model input: ${reason}` }))
  const { spec } = weights
  if (!Number.isInteger(batch.batch) || batch.batch < 1) return fail(`batch ${batch.batch} must be a positive integer`)
  if (!Number.isInteger(batch.seq) || batch.seq < 1) return fail(`seq ${batch.seq} must be a positive integer`)
  if (batch.seq > spec.context) return fail(`seq ${batch.seq} exceeds the context of ${spec.context}`)
  if (batch.tokens.length !== batch.batch * batch.seq) return fail(`${batch.tokens.length} tokens for batch ${batch.batch} × seq ${batch.seq}`)
  for (let i = 0; i < batch.tokens.length; i++) {
    const t = batch.tokens[i]!
    if (!Number.isInteger(t) || t < 0 || t >= spec.vocab) return fail(`token ${t} at ${i} is not in [0, ${spec.vocab})`)
  }
  for (const p of weights.parts.values()) {
    const v = validatePart(spec, p)
    if (Either.isLeft(v)) return fail(v.left.message)
  }
  return Effect.void
}

// ---------------------------------------------------------------------------------------------
// the pass

/** One expert's share of a layer: which token rows (and top-k slots) it served, its input and output. */
export interface ExpertDispatch {
  readonly expert: number
  readonly rows: Int32Array
  readonly slots: Int32Array
  readonly x: FloatArray
  readonly y: FloatArray
}

/** What the backward pass needs from each layer. */
export interface LayerActivations {
  readonly x: FloatArray
  readonly h: FloatArray
  readonly experts: Int32Array
  readonly gates: Float64Array
  readonly mask: Uint8Array
  readonly dispatch: ReadonlyArray<ExpertDispatch>
}

export interface ForwardTrace {
  readonly tokens: TensorValue
  readonly positions: TensorValue
  readonly mask: TensorValue
  readonly layers: ReadonlyArray<LayerActivations>
  /** The residual stream after the last layer, [B, T, d]. */
  readonly final: FloatArray
  readonly routing: Routing
}

/** The sizes every pass over a batch works with. */
export const passDims = (graphs: ModelGraphs, batch: { readonly batch: number; readonly seq: number }) => ({
  spec: graphs.spec,
  precision: graphs.precision,
  B: batch.batch,
  T: batch.seq,
  N: batch.batch * batch.seq,
  d: graphs.spec.dModel,
  E: graphs.spec.experts,
  K: graphs.spec.topK
})

/** The token and position embeddings of a batch, with the causal mask every layer of the pass uses. */
export const embedForward = (graphs: ModelGraphs, weights: ModelWeights, batch: TokenBatch) =>
  Effect.gen(function* () {
    const { precision, B, T } = passDims(graphs, batch)
    const tokens = int64Feed(batch.tokens, [B, T])
    const positions = int64Feed(Array.from({ length: T }, (_, i) => i), [T])
    const emb = yield* runGraph(graphs.embedding.forward, { tokens, positions, ...partFeeds(graphs, weights, EMBEDDING, EMBEDDING_WEIGHTS) })
    return { tokens, positions, mask: causalMaskFeed(precision, T), x: floats(emb.x) }
  })

export const causalMaskFeed = (p: Precision, t: number): TensorValue => floatFeed(p, causalMask(p, t), [t, t])

/** Layer `l` over the residual stream x ([B, T, d]): what its backward needs, the next stream, and who ran its experts. */
export const layerForward = <E = never>(
  graphs: ModelGraphs,
  weights: ModelWeights,
  l: number,
  x: FloatArray,
  mask: TensorValue,
  batch: { readonly batch: number; readonly seq: number },
  compute?: ExpertCompute<E>
) =>
  Effect.gen(function* () {
    const { precision, B, T, N, d } = passDims(graphs, batch)
    const att = yield* runGraph(graphs.attention.forward, { x: floatFeed(precision, x, [B, T, d]), mask, ...partFeeds(graphs, weights, attentionPart(l), ATTENTION_WEIGHTS) })
    const h = floats(att.y)
    const moe = yield* mixtureOfExperts(graphs, weights, l, h, N, compute)
    const act: LayerActivations = { x, h, experts: moe.sel.experts, gates: moe.sel.gates, mask: moe.sel.mask, dispatch: moe.dispatch }
    return { act, next: moe.next, servedBy: moe.servedBy }
  })

/** Runs every layer and records what the backward pass needs; the head is left to the caller. */
export const forwardTrace = <E = never>(
  graphs: ModelGraphs,
  weights: ModelWeights,
  batch: TokenBatch,
  compute?: ExpertCompute<E>
): Effect.Effect<ForwardTrace, ModelError | E, Executor> =>
  Effect.gen(function* () {
    yield* validateBatch(weights, batch)
    const { spec, N, K } = passDims(graphs, batch)
    const { tokens, positions, mask, x: embedded } = yield* embedForward(graphs, weights, batch)
    let x = embedded
    const layers: LayerActivations[] = []
    const servedBy: Array<ReadonlyMap<number, Served>> = []
    const routeExperts = new Int32Array(spec.layers * N * K)
    const routeGates = new Float32Array(spec.layers * N * K)
    for (let l = 0; l < spec.layers; l++) {
      const layer = yield* layerForward(graphs, weights, l, x, mask, batch, compute)
      routeExperts.set(layer.act.experts, l * N * K)
      for (let i = 0; i < N * K; i++) routeGates[l * N * K + i] = layer.act.gates[i]!
      layers.push(layer.act)
      servedBy.push(layer.servedBy)
      x = layer.next
    }
    return {
      tokens,
      positions,
      mask,
      layers,
      final: x,
      routing: { layers: spec.layers, tokens: N, topK: K, experts: routeExperts, gates: routeGates, servedBy }
    }
  })

/**
 * Layer `l`'s router and top-k experts over its attention output h ([N, d]): the selection, what
 * each expert computed, and the next residual stream h + Σ gate · expert(LN(h)).
 */
const mixtureOfExperts = <E>(graphs: ModelGraphs, weights: ModelWeights, l: number, h: FloatArray, N: number, compute: ExpertCompute<E> | undefined) =>
  Effect.gen(function* () {
    const run = compute ?? localExperts(graphs, weights)
    const { precision, d, E, K } = passDims(graphs, { batch: 1, seq: N })
    const r = yield* runGraph(graphs.router.forward, { h: floatFeed(precision, h, [N, d]), ...partFeeds(graphs, weights, routerPart(l), ROUTER_WEIGHTS) })
    const xn = floats(r.xn)
    const sel = selectTopK(floats(r.probs), N, E, K)
    const plan = dispatchPlan(sel.experts, N, E, K)
    const work = plan.map(({ expert, rows }) => ({ expert, x: gatherRows(precision, xn, rows, d), rows: rows.length }))
    const outs = yield* run(l, work)
    const dispatch = plan.map(({ expert, rows, slots }, i) => ({ expert, rows, slots, x: work[i]!.x, y: outs[i]!.y, served: outs[i]!.served }))
    // Summed in a fixed order (by expert), so the result does not depend on scheduling.
    const next = allocFloat(precision, N * d)
    next.set(h)
    for (const de of dispatch) {
      for (let r2 = 0; r2 < de.rows.length; r2++) {
        const tok = de.rows[r2]!
        const g = sel.gates[tok * K + de.slots[r2]!]!
        for (let c = 0; c < d; c++) next[tok * d + c] = next[tok * d + c]! + g * de.y[r2 * d + c]!
      }
    }
    const servedBy = new Map<number, Served>()
    for (const de of dispatch) if (de.served !== undefined) servedBy.set(de.expert, de.served)
    return { sel, dispatch, next, servedBy }
  })

/** The node that computed an expert's rows, and the id of the request it answered (its receipt's). */
export type Served = { readonly node: string; readonly request: string }

/** One expert's share of a layer's tokens: `rows` rows of its input x ([rows, dModel]). */
export type ExpertWork = { readonly expert: number; readonly x: FloatArray; readonly rows: number }

/**
 * Who computes layer `layer`'s experts, each over its rows, answering in the order asked: this
 * process (`localExperts`), or nodes over the bus, which name themselves (`served`). A layer's
 * experts are asked together, so that those on one node can go in one request.
 */
export type ExpertCompute<E> = (layer: number, work: ReadonlyArray<ExpertWork>) => Effect.Effect<ReadonlyArray<{ readonly y: FloatArray; readonly served?: Served }>, E, Executor>

/** Every expert computed here, from `weights`. */
export const localExperts =
  (graphs: ModelGraphs, weights: ModelWeights): ExpertCompute<ExecutionFailed> =>
  (layer, work) =>
    Effect.forEach(work, ({ expert, x, rows }) => Effect.map(expertForward(graphs, weights, expertPart(layer, expert), x, rows), (y) => ({ y })))

/** One expert's FFN over `n` rows of its input x ([n, dModel]): what a node serving the expert computes. */
export const expertForward = (graphs: ModelGraphs, weights: ModelWeights, part: string, x: FloatArray, n: number): Effect.Effect<FloatArray, ExecutionFailed, Executor> =>
  Effect.map(
    runGraph(graphs.expert.forward, { x: floatFeed(graphs.precision, x, [n, graphs.spec.dModel]), ...partFeeds(graphs, weights, part, EXPERT_WEIGHTS) }),
    (out) => floats(out.y)
  )

/** For each expert that got tokens: the token rows and the top-k slot it holds for each. */
export const dispatchPlan = (experts: Int32Array, n: number, e: number, k: number) => {
  const rows: number[][] = Array.from({ length: e }, () => [])
  const slots: number[][] = Array.from({ length: e }, () => [])
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const x = experts[i * k + j]!
      rows[x]!.push(i)
      slots[x]!.push(j)
    }
  }
  return rows.flatMap((r, expert) => (r.length === 0 ? [] : [{ expert, rows: Int32Array.from(r), slots: Int32Array.from(slots[expert]!) }]))
}

export const gatherRows = (p: Precision, src: ArrayLike<number>, rows: Int32Array, d: number): FloatArray => {
  const out = allocFloat(p, rows.length * d)
  for (let r = 0; r < rows.length; r++) {
    const base = rows[r]! * d
    for (let c = 0; c < d; c++) out[r * d + c] = src[base + c]!
  }
  return out
}

/** The head's logits [batch, seq, 256] over the last residual stream. */
const headLogits = (graphs: ModelGraphs, weights: ModelWeights, final: FloatArray, batch: number, seq: number) =>
  Effect.map(
    runGraph(graphs.head.forward, { h: floatFeed(graphs.precision, final, [batch, seq, graphs.spec.dModel]), ...partFeeds(graphs, weights, HEAD, HEAD_WEIGHTS) }),
    (out) => floats(out.logits)
  )

/** Logits [batch, seq, 256] for token ids [batch, seq], with the experts each token used. */
export const forward = <E = never>(graphs: ModelGraphs, weights: ModelWeights, batch: TokenBatch, compute?: ExpertCompute<E>): Effect.Effect<ForwardResult, ModelError | E, Executor> =>
  Effect.gen(function* () {
    const trace = yield* forwardTrace(graphs, weights, batch, compute)
    return { logits: yield* headLogits(graphs, weights, trace.final, batch.batch, batch.seq), routing: trace.routing }
  })

// ---------------------------------------------------------------------------------------------
// incremental decoding

/**
 * The keys and values of every layer for the first `positions` positions of one sequence
 * ([1, heads, positions, dModel / heads] each), so that decoding the next position attends to
 * them instead of recomputing them.
 */
export interface KvCache {
  readonly positions: number
  readonly layers: ReadonlyArray<{ readonly k: FloatArray; readonly v: FloatArray }>
}

export const emptyKvCache = (graphs: ModelGraphs): KvCache => ({
  positions: 0,
  layers: Array.from({ length: graphs.spec.layers }, () => ({ k: allocFloat(graphs.precision, 0), v: allocFloat(graphs.precision, 0) }))
})

/** Additive mask [S, P + S] for S new positions after P cached ones: each sees the cache, itself and the new ones before it. */
export const stepMask = (p: Precision, past: number, s: number): FloatArray => {
  const m = allocFloat(p, s * (past + s))
  for (let i = 0; i < s; i++) for (let j = past + i + 1; j < past + s; j++) m[i * (past + s) + j] = MASKED
  return m
}

/**
 * Decode `tokens` (one sequence) at the positions after the cache's: their logits [S, 256] and
 * routing, exactly as a forward pass over the cached positions and these would give them, and
 * the cache extended by them. The positions must stay within the model's context.
 */
export const forwardStep = <E = never>(
  graphs: ModelGraphs,
  weights: ModelWeights,
  cache: KvCache,
  tokens: ArrayLike<number>,
  compute?: ExpertCompute<E>
): Effect.Effect<ForwardResult & { readonly cache: KvCache }, ModelError | E, Executor> =>
  Effect.gen(function* () {
    const S = tokens.length
    const P = cache.positions
    if (P + S > graphs.spec.context)
      return yield* Effect.fail(new InvalidModelInput({ message: `invalid model input: ${P} cached and ${S} new positions exceed the context of ${graphs.spec.context}` }))
    yield* validateBatch(weights, { batch: 1, seq: S, tokens })
    const { spec, precision, d, K } = passDims(graphs, { batch: 1, seq: S })
    const dh = d / spec.heads
    const emb = yield* runGraph(graphs.embedding.forward, {
      tokens: int64Feed(tokens, [1, S]),
      positions: int64Feed(Array.from({ length: S }, (_, i) => P + i), [S]),
      ...partFeeds(graphs, weights, EMBEDDING, EMBEDDING_WEIGHTS)
    })
    let x = floats(emb.x)
    const mask = floatFeed(precision, stepMask(precision, P, S), [S, P + S])
    const layers: Array<KvCache["layers"][number]> = []
    const servedBy: Array<ReadonlyMap<number, Served>> = []
    const experts = new Int32Array(spec.layers * S * K)
    const gates = new Float32Array(spec.layers * S * K)
    for (let l = 0; l < spec.layers; l++) {
      const past = cache.layers[l]!
      const att = yield* runGraph(graphs.attention.step, {
        x: floatFeed(precision, x, [1, S, d]),
        "past.k": floatFeed(precision, past.k, [1, spec.heads, P, dh]),
        "past.v": floatFeed(precision, past.v, [1, spec.heads, P, dh]),
        mask,
        ...partFeeds(graphs, weights, attentionPart(l), ATTENTION_WEIGHTS)
      })
      layers.push({ k: floats(att.k), v: floats(att.v) })
      const moe = yield* mixtureOfExperts(graphs, weights, l, floats(att.y), S, compute)
      servedBy.push(moe.servedBy)
      experts.set(moe.sel.experts, l * S * K)
      for (let i = 0; i < S * K; i++) gates[l * S * K + i] = moe.sel.gates[i]!
      x = moe.next
    }
    return {
      logits: yield* headLogits(graphs, weights, x, 1, S),
      routing: { layers: spec.layers, tokens: S, topK: K, experts, gates, servedBy },
      cache: { positions: P + S, layers }
    }
  })
