/**
 * The ONNX graphs of a blyan-moe model, one forward and one backward graph per kind of part.
 * Weights are graph inputs (named as in the part's tensors), so one graph serves every layer and
 * expert; batch and sequence sizes are symbolic, so one graph serves every batch.
 *
 * Backward graphs recompute their part's forward pass (activation recomputation) and take the
 * upstream gradient of each output as input `grad.<output>`; they return `grad.<input>`.
 */
import type { ModelSpec } from "../spec.ts"
import { differentiate, gradientOf, vjp } from "./autodiff.ts"
import type { FloatType, Graph } from "./ir.ts"
import { GraphBuilder } from "./ir.ts"
import { attention, attentionWithPast, crossEntropy, embedding, expertFfn, gates, head, router, type AttentionWeights } from "./layers.ts"
import { serializeGraph } from "./serialize.ts"

export type Precision = "f32" | "f64"

export const floatType = (p: Precision): FloatType => (p === "f32" ? "float" : "double")

/** An ONNX model ready for an executor: its bytes and its input and output names. */
export interface CompiledGraph {
  readonly name: string
  readonly bytes: Uint8Array
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
}

export const compile = (g: Graph): CompiledGraph => ({ name: g.name, bytes: serializeGraph(g), inputs: g.inputs, outputs: g.outputs })

const LN = ["ln.weight", "ln.bias"] as const
export const ATTENTION_WEIGHTS = [...LN, "wq", "wk", "wv", "wo"] as const
export const ROUTER_WEIGHTS = [...LN, "w"] as const
export const EXPERT_WEIGHTS = ["w1", "b1", "w2", "b2"] as const
export const HEAD_WEIGHTS = [...LN, "w"] as const
export const EMBEDDING_WEIGHTS = ["tok", "pos"] as const

/** Forward IR graphs of every part kind (exported for tests and tools). */
export const forwardGraphs = (spec: ModelSpec, float: FloatType) => {
  const d = spec.dModel
  const emb = (() => {
    const b = new GraphBuilder("embedding.forward", float)
    const tokens = b.input("tokens", ["B", "T"], "int64")
    const positions = b.input("positions", ["T"], "int64")
    const x = embedding(b, tokens, positions, b.input("tok", [spec.vocab, d]), b.input("pos", [spec.context, d]))
    return b.build([b.identity(x, "x")])
  })()
  const attentionWeights = (b: GraphBuilder): AttentionWeights => {
    const [lnWeight, lnBias, wq, wk, wv, wo] = ATTENTION_WEIGHTS.map((n) => b.input(n, n.startsWith("ln") ? [d] : [d, d])) as [string, string, string, string, string, string]
    return { lnWeight, lnBias, wq, wk, wv, wo }
  }
  const att = (() => {
    const b = new GraphBuilder("attention.forward", float)
    const x = b.input("x", ["B", "T", d])
    const mask = b.input("mask", ["T", "T"])
    const y = attention(b, x, mask, attentionWeights(b), spec.heads, d)
    return b.build([b.identity(y, "y")])
  })()
  // Decoding with a key/value cache: the new positions' attention over the cached ones.
  const attStep = (() => {
    const b = new GraphBuilder("attention.step", float)
    const x = b.input("x", ["B", "S", d])
    const dh = d / spec.heads
    const past = { k: b.input("past.k", ["B", spec.heads, "P", dh]), v: b.input("past.v", ["B", spec.heads, "P", dh]) }
    const mask = b.input("mask", ["S", "L"])
    const r = attentionWithPast(b, x, past, mask, attentionWeights(b), spec.heads, d)
    return b.build([b.identity(r.y, "y"), b.identity(r.k, "k"), b.identity(r.v, "v")])
  })()
  const routerGraph = (withGates: boolean) => {
    const b = new GraphBuilder(withGates ? "router.gates" : "router.forward", float)
    const h = b.input("h", ["N", d])
    const r = router(b, h, b.input("ln.weight", [d]), b.input("ln.bias", [d]), b.input("w", [d, spec.experts]))
    const xn = b.identity(r.xn, "xn")
    if (!withGates) return b.build([xn, b.identity(r.probs, "probs")])
    const mask = b.input("mask", ["N", spec.experts])
    return b.build([xn, b.identity(gates(b, r.probs, mask), "gates")])
  }
  const exp = (() => {
    const b = new GraphBuilder("expert.forward", float)
    const x = b.input("x", ["N", d])
    const y = expertFfn(b, x, {
      w1: b.input("w1", [d, spec.dFF]),
      b1: b.input("b1", [spec.dFF]),
      w2: b.input("w2", [spec.dFF, d]),
      b2: b.input("b2", [d])
    })
    return b.build([b.identity(y, "y")])
  })()
  const headGraph = (withLoss: boolean) => {
    const b = new GraphBuilder(withLoss ? "head.loss" : "head.forward", float)
    const h = b.input("h", ["B", "T", d])
    const logits = head(b, h, b.input("ln.weight", [d]), b.input("ln.bias", [d]), b.input("w", [d, spec.vocab]))
    if (!withLoss) return b.build([b.identity(logits, "logits")])
    const loss = crossEntropy(b, logits, b.input("onehot", ["B", "T", spec.vocab]), b.input("weights", ["B", "T"]))
    return b.build([b.identity(loss, "loss")])
  }
  return {
    embedding: emb,
    attention: att,
    attentionStep: attStep,
    router: routerGraph(false),
    routerGates: routerGraph(true),
    expert: exp,
    head: headGraph(false),
    headLoss: headGraph(true)
  }
}

/** Backward IR graphs of every part kind. */
export const backwardGraphs = (spec: ModelSpec, float: FloatType) => {
  const f = forwardGraphs(spec, float)
  return {
    embedding: vjp(f.embedding, EMBEDDING_WEIGHTS, "embedding.backward"),
    attention: vjp(f.attention, ["x", ...ATTENTION_WEIGHTS], "attention.backward"),
    router: differentiate(f.routerGates, {
      wrt: ["h", ...ROUTER_WEIGHTS],
      seeds: [
        { output: "xn", seed: "input" },
        { output: "gates", seed: "input" }
      ],
      name: "router.backward"
    }),
    expert: vjp(f.expert, ["x", ...EXPERT_WEIGHTS], "expert.backward"),
    head: gradientOf(f.headLoss, "loss", ["h", ...HEAD_WEIGHTS], { name: "head.backward" })
  }
}

export interface ModelGraphs {
  readonly spec: ModelSpec
  readonly precision: Precision
  readonly embedding: { readonly forward: CompiledGraph; readonly backward: CompiledGraph }
  /** `step`: new positions attending to cached keys and values (incremental decoding). */
  readonly attention: { readonly forward: CompiledGraph; readonly backward: CompiledGraph; readonly step: CompiledGraph }
  readonly router: { readonly forward: CompiledGraph; readonly backward: CompiledGraph }
  readonly expert: { readonly forward: CompiledGraph; readonly backward: CompiledGraph }
  readonly head: { readonly forward: CompiledGraph; readonly loss: CompiledGraph; readonly backward: CompiledGraph }
}

/** All graphs a model needs, compiled; the same spec and precision give the same bytes. */
export const buildModelGraphs = (spec: ModelSpec, precision: Precision = "f32"): ModelGraphs => {
  const float = floatType(precision)
  const f = forwardGraphs(spec, float)
  const bw = backwardGraphs(spec, float)
  return {
    spec,
    precision,
    embedding: { forward: compile(f.embedding), backward: compile(bw.embedding) },
    attention: { forward: compile(f.attention), backward: compile(bw.attention), step: compile(f.attentionStep) },
    router: { forward: compile(f.router), backward: compile(bw.router) },
    expert: { forward: compile(f.expert), backward: compile(bw.expert) },
    head: { forward: compile(f.head), loss: compile(f.headLoss), backward: compile(bw.head) }
  }
}

/** Graphs depend on these sizes only (not on the name, seed, dtype or number of layers). */
const shapeKey = (s: ModelSpec, p: Precision) => [s.vocab, s.context, s.dModel, s.heads, s.experts, s.dFF, p].join(",")

/** `buildModelGraphs`, built once per model shape and precision; a hit for a spec of the same shape is rebound to the caller's spec. */
export const makeGraphsCache = () => {
  const cache = new Map<string, ModelGraphs>()
  return (spec: ModelSpec, precision: Precision): ModelGraphs => {
    const key = shapeKey(spec, precision)
    const hit = cache.get(key)
    if (hit !== undefined) return hit.spec === spec ? hit : { ...hit, spec }
    const built = buildModelGraphs(spec, precision)
    cache.set(key, built)
    return built
  }
}

/** Every graph of a model as a file name and its ONNX bytes (e.g. for `blyan export --onnx DIR`). */
export const graphFiles = (g: ModelGraphs): ReadonlyArray<{ readonly file: string; readonly graph: CompiledGraph }> =>
  [
    g.embedding.forward,
    g.embedding.backward,
    g.attention.forward,
    g.attention.backward,
    g.attention.step,
    g.router.forward,
    g.router.backward,
    g.expert.forward,
    g.expert.backward,
    g.head.forward,
    g.head.loss,
    g.head.backward
  ].map((graph) => ({ file: `${graph.name}.onnx`, graph }))
