/**
 * Incremental decoding of a Mixtral or Qwen3-MoE checkpoint over the Executor port, part by part
 * (attention, router, experts, head), so that each layer's experts can be computed elsewhere: an
 * `ExpertCompute` gets them, by default this process from `weights`.
 *
 * Routing follows transformers: top-k of the router's softmax (ties to the lower index), the
 * selected probabilities renormalised iff `normTopK`.
 */
import { Effect } from "effect"
import { ExecutionFailed, type Executor, type TensorValue } from "../../ports/executor.ts"
import type { ExpertCompute, FloatArray, ModelError, Routing, Served } from "../forward.ts"
import { allocFloat, dispatchPlan, floatFeed, floats, gatherRows, InvalidModelInput, runGraph, selectTopK, stepMask } from "../forward.ts"
import { attentionRoles, EXPERT_ROLES, familyGraphsKey, HEAD_ROLES, ROUTER_ROLES, rotaryTables, type FamilyGraphs } from "../onnx/families.ts"
import type { PartRef } from "../spec.ts"
import type { FamilySpec } from "./config.ts"
import { partTensors } from "./layout.ts"

export type FamilyTensor = { readonly shape: ReadonlyArray<number>; readonly data: Float32Array | Float64Array }
/** A checkpoint's tensors by checkpoint name (as `checkpointLayout` names them). */
export type FamilyWeights = ReadonlyMap<string, FamilyTensor> | ((checkpointName: string) => FamilyTensor | undefined)

/** Keys and values of the first `positions` positions, per layer [kvHeads, positions, headDim] each. */
export interface FamilyKvCache {
  readonly positions: number
  readonly layers: ReadonlyArray<{ readonly k: FloatArray; readonly v: FloatArray }>
}

export interface FamilyStep {
  /** [vocab]: the logits after the last of the tokens fed. */
  readonly logits: FloatArray
  /** Per layer, the experts of each token fed, best first, and their weights (`gates`). */
  readonly routing: Routing
}

const invalid = (reason: string) => new InvalidModelInput({ message: `invalid model input: ${reason}` })

export const emptyFamilyCache = (spec: FamilySpec, graphs: FamilyGraphs): FamilyKvCache => ({
  positions: 0,
  layers: Array.from({ length: spec.layers }, () => ({ k: allocFloat(graphs.precision, 0), v: allocFloat(graphs.precision, 0) }))
})

/**
 * A part's weights as feeds named by the graph's roles, checked against the layout's shapes and
 * converted once (an f32 array feeds an f32 graph as is).
 */
const makeFeeds = (spec: FamilySpec, graphs: FamilyGraphs, weights: FamilyWeights) => {
  const get = typeof weights === "function" ? weights : (n: string) => weights.get(n)
  const memo = new Map<string, Record<string, TensorValue>>()
  const tensorFeed = (ref: PartRef, index: number): Effect.Effect<TensorValue, InvalidModelInput> => {
    const t = partTensors(spec, ref)?.[index]
    if (t === undefined) return Effect.fail(invalid(`the model has no part ${JSON.stringify(ref)}`))
    const w = get(t.checkpointName)
    if (w === undefined) return Effect.fail(invalid(`weight ${t.checkpointName} is missing`))
    const numel = t.shape.reduce((a, b) => a * b, 1)
    if (w.shape.length !== t.shape.length || w.shape.some((x, i) => x !== t.shape[i]) || w.data.length !== numel) {
      return Effect.fail(invalid(`weight ${t.checkpointName} has shape [${w.shape}] (${w.data.length} values), expected [${t.shape}]`))
    }
    return Effect.succeed(floatFeed(graphs.precision, w.data, t.shape))
  }
  const feeds = (key: string, entries: ReadonlyArray<readonly [string, PartRef, number]>) =>
    Effect.suspend(() => {
      const hit = memo.get(key)
      if (hit !== undefined) return Effect.succeed(hit)
      return Effect.map(
        Effect.forEach(entries, ([role, ref, i]) => Effect.map(tensorFeed(ref, i), (f) => [role, f] as const)),
        (pairs) => {
          const out = Object.fromEntries(pairs)
          memo.set(key, out)
          return out
        }
      )
    })
  const roles = (names: ReadonlyArray<string>, ref: PartRef) => names.map((r, i) => [r, ref, i] as const)
  return {
    attention: (layer: number) => feeds(`a${layer}`, roles(attentionRoles(spec), { kind: "attention", layer })),
    router: (layer: number) => feeds(`r${layer}`, roles(ROUTER_ROLES, { kind: "router", layer })),
    expert: (layer: number, expert: number) => feeds(`e${layer}.${expert}`, roles(EXPERT_ROLES, { kind: "expert", layer, expert })),
    // Tied: the head's projection is the embedding matrix, which the embedding part holds.
    head: () => {
      const [norm, w] = HEAD_ROLES
      return feeds("h", [[norm, { kind: "head" }, 0], spec.tieEmbeddings ? [w, { kind: "embedding" }, 0] : [w, { kind: "head" }, 1]])
    },
    embedding: () => Effect.map(feeds("m", [["w", { kind: "embedding" }, 0]]), (f) => floats(f.w))
  }
}

type Feeds = ReturnType<typeof makeFeeds>

/** One expert's SwiGLU over `rows` rows of x ([rows, hidden]): what a node serving the expert computes. */
export const familyExpertForward = (graphs: FamilyGraphs, feeds: Record<string, TensorValue>, x: FloatArray, rows: number) =>
  Effect.map(runGraph(graphs.expert, { x: floatFeed(graphs.precision, x, [rows, graphs.spec.hidden]), ...feeds }), (out) => floats(out.y))

const localWith =
  (graphs: FamilyGraphs, feeds: Feeds): ExpertCompute<ModelError> =>
  (layer, work) =>
    Effect.forEach(work, ({ expert, x, rows }) =>
      Effect.flatMap(feeds.expert(layer, expert), (f) => Effect.map(familyExpertForward(graphs, f, x, rows), (y) => ({ y })))
    )

/** Every expert computed here, from `weights`. */
export const localFamilyExperts = (spec: FamilySpec, graphs: FamilyGraphs, weights: FamilyWeights): ExpertCompute<ModelError> =>
  localWith(graphs, makeFeeds(spec, graphs, weights))

const checkTokens = (spec: FamilySpec, cache: FamilyKvCache, tokens: ReadonlyArray<number>): Effect.Effect<void, InvalidModelInput> => {
  if (tokens.length === 0) return Effect.fail(invalid("no tokens"))
  if (cache.positions + tokens.length > spec.context) {
    return Effect.fail(invalid(`${cache.positions} cached and ${tokens.length} new positions exceed the context of ${spec.context}`))
  }
  const bad = tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= spec.vocab)
  return bad < 0 ? Effect.void : Effect.fail(invalid(`token ${tokens[bad]} at ${bad} is not in [0, ${spec.vocab})`))
}

/** Layer l's MoE block over h ([S, hidden]): the selection, who served it, and h + Σ weight · expert(xn). */
const moe = <E>(spec: FamilySpec, graphs: FamilyGraphs, feeds: Feeds, l: number, h: FloatArray, S: number, compute: ExpertCompute<E>) =>
  Effect.gen(function* () {
    const { hidden: d, experts: E, topK: K } = spec
    const r = yield* runGraph(graphs.router, { h: floatFeed(graphs.precision, h, [S, d]), ...(yield* feeds.router(l)) })
    const xn = floats(r.xn)
    const probs = floats(r.probs)
    const sel = selectTopK(probs, S, E, K)
    // selectTopK renormalises; Qwen3 without norm_topk_prob uses the raw probabilities.
    const weights = spec.normTopK ? sel.gates : Float64Array.from(sel.experts, (e, i) => probs[Math.floor(i / K) * E + e]!)
    const plan = dispatchPlan(sel.experts, S, E, K)
    const work = plan.map(({ expert, rows }) => ({ expert, x: gatherRows(graphs.precision, xn, rows, d), rows: rows.length }))
    const outs = yield* compute(l, work)
    const next = allocFloat(graphs.precision, S * d)
    next.set(h)
    const servedBy = new Map<number, Served>()
    // Summed in a fixed order (by expert), so the result does not depend on who computed what.
    for (const [i, { expert, rows, slots }] of plan.entries()) {
      const out = outs[i]
      if (out === undefined || out.y.length !== rows.length * d) {
        return yield* Effect.fail(ExecutionFailed.of({ graph: `layer ${l} expert ${expert}`, reason: `expected ${rows.length * d} outputs, got ${out?.y.length ?? "none"}` }))
      }
      if (out.served !== undefined) servedBy.set(expert, out.served)
      for (let j = 0; j < rows.length; j++) {
        const tok = rows[j]!
        const g = weights[tok * K + slots[j]!]!
        for (let c = 0; c < d; c++) next[tok * d + c] = next[tok * d + c]! + g * out.y[j * d + c]!
      }
    }
    return { experts: sel.experts, weights, next, servedBy }
  })

const stepWith = <E>(spec: FamilySpec, graphs: FamilyGraphs, feeds: Feeds, cache: FamilyKvCache, tokens: ReadonlyArray<number>, compute: ExpertCompute<E>) =>
  Effect.gen(function* () {
    yield* checkTokens(spec, cache, tokens)
    const { hidden: d, kvHeads: KV, headDim: hd, topK: K, layers: L } = spec
    const { precision } = graphs
    const S = tokens.length
    const P = cache.positions
    const embed = yield* feeds.embedding()
    let x = allocFloat(precision, S * d)
    tokens.forEach((t, i) => x.set(embed.subarray(t * d, (t + 1) * d), i * d))
    const rot = rotaryTables(spec, P, S)
    const cos = floatFeed(precision, rot.cos, [S, hd / 2])
    const sin = floatFeed(precision, rot.sin, [S, hd / 2])
    const mask = floatFeed(precision, stepMask(precision, P, S), [S, P + S])
    const layers: Array<FamilyKvCache["layers"][number]> = []
    const servedBy: Array<ReadonlyMap<number, Served>> = []
    const experts = new Int32Array(L * S * K)
    const gates = new Float32Array(L * S * K)
    for (let l = 0; l < L; l++) {
      const past = cache.layers[l]!
      const att = yield* runGraph(graphs.attention, {
        x: floatFeed(precision, x, [S, d]),
        cos,
        sin,
        "past.k": floatFeed(precision, past.k, [KV, P, hd]),
        "past.v": floatFeed(precision, past.v, [KV, P, hd]),
        mask,
        ...(yield* feeds.attention(l))
      })
      layers.push({ k: floats(att.k), v: floats(att.v) })
      const m = yield* moe(spec, graphs, feeds, l, floats(att.y), S, compute)
      experts.set(m.experts, l * S * K)
      gates.set(m.weights, l * S * K)
      servedBy.push(m.servedBy)
      x = m.next
    }
    // Only the last position's logits are wanted: the head reads that row alone.
    const head = yield* runGraph(graphs.head, { h: floatFeed(precision, x.subarray((S - 1) * d), [1, d]), ...(yield* feeds.head()) })
    const result: FamilyStep = { logits: floats(head.logits), routing: { layers: L, tokens: S, topK: K, experts, gates, servedBy } }
    return { ...result, cache: { positions: P + S, layers } satisfies FamilyKvCache }
  })

const checkGraphs = (spec: FamilySpec, graphs: FamilyGraphs): Effect.Effect<void, InvalidModelInput> =>
  familyGraphsKey(spec) === familyGraphsKey(graphs.spec) ? Effect.void : Effect.fail(invalid(`the graphs were built for another model shape (${familyGraphsKey(graphs.spec)})`))

/**
 * Feeds `tokens` at the positions after the cache's: the last one's logits, every token's
 * routing, and the cache extended by them. Pure in the cache: the one passed is left as it was.
 */
export const familyStep = <E = never>(
  spec: FamilySpec,
  graphs: FamilyGraphs,
  weights: FamilyWeights,
  cache: FamilyKvCache,
  tokens: ReadonlyArray<number>,
  compute?: ExpertCompute<E>
): Effect.Effect<FamilyStep & { readonly cache: FamilyKvCache }, ModelError | E, Executor> =>
  Effect.suspend(() => {
    const feeds = makeFeeds(spec, graphs, weights)
    const run: ExpertCompute<E | ModelError> = compute ?? localWith(graphs, feeds)
    return Effect.zipRight(checkGraphs(spec, graphs), stepWith(spec, graphs, feeds, cache, tokens, run))
  })

export interface FamilySession<E> {
  /** Feeds the next tokens (a prompt, or one sampled token); the cache advances only when it succeeds. Steps run one at a time. */
  readonly step: (tokens: ReadonlyArray<number>) => Effect.Effect<FamilyStep, ModelError | E, Executor>
  readonly position: () => number
}

/** A sequence being decoded: carries its cache and each part's feeds (converted once) from step to step. */
export const familySession = <E = never>(spec: FamilySpec, graphs: FamilyGraphs, weights: FamilyWeights, compute?: ExpertCompute<E>): FamilySession<E> => {
  const feeds = makeFeeds(spec, graphs, weights)
  const run: ExpertCompute<E | ModelError> = compute ?? localWith(graphs, feeds)
  let cache = emptyFamilyCache(spec, graphs)
  return {
    step: (tokens) =>
      Effect.gen(function* () {
        yield* checkGraphs(spec, graphs)
        const out = yield* stepWith(spec, graphs, feeds, cache, tokens, run)
        cache = out.cache
        return { logits: out.logits, routing: out.routing }
      }),
    position: () => cache.positions
  }
}
