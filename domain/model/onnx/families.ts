/**
 * Inference graphs of the open MoE families (Mixtral, Qwen3-MoE), one per kind of part. As with
 * the built-in model, a part's weights are graph inputs, so one graph serves every layer and
 * expert; they are named by role, not by checkpoint name, because an expert's names carry its
 * index. Weights stay in PyTorch's [out, in] order: Gemm with transB multiplies by Wᵀ without a
 * copy. One sequence at a time: activations are [tokens, hidden].
 *
 * The embedding lookup is not a graph: copying rows in TypeScript is exact and spares feeding the
 * whole [vocab, hidden] matrix to every step.
 */
import type { FamilySpec } from "../families/config.ts"
import { compile, floatType, type CompiledGraph, type Precision } from "./graphs.ts"
import { GraphBuilder, type Dim, type FloatType } from "./ir.ts"

/** Graph input names of each part's weights, in `partTensors`' order (Qwen3 adds q_norm and k_norm). */
export const attentionRoles = (spec: FamilySpec): ReadonlyArray<string> =>
  spec.family === "qwen3_moe" ? ["norm", "q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"] : ["norm", "q_proj", "k_proj", "v_proj", "o_proj"]
export const ROUTER_ROLES = ["norm", "gate"] as const
export const EXPERT_ROLES = ["gate", "up", "down"] as const
/** `w` is lm_head, or the embedding matrix when tied. */
export const HEAD_ROLES = ["norm", "w"] as const

/** x Wᵀ for x [N, in] and a PyTorch Linear weight W [out, in]. */
const linear = (b: GraphBuilder, x: string, w: string): string =>
  b.node("Gemm", [x, w], { type: b.meta(x).type, shape: [b.shapeOf(x)[0]!, b.shapeOf(w)[0]!] }, { transB: { i: 1 } })

/** x / sqrt(mean(x²) + eps) · w over the last axis. */
export const rmsNorm = (b: GraphBuilder, x: string, w: string, eps: number): string =>
  b.mul(b.div(x, b.sqrt(b.add(b.reduceMean(b.mul(x, x), [-1], true), b.scalar(eps)))), w)

/** x · sigmoid(x), as x / (1 + e^−x): for very negative x, e^−x overflows to ∞ and the quotient is the right −0. */
export const silu = (b: GraphBuilder, x: string): string => b.div(x, b.add(b.scalar(1), b.exp(b.neg(x))))

const slice = (b: GraphBuilder, x: string, axis: number, start: number, end: number): string => {
  const shape = b.shapeOf(x).map((d, i) => (i === axis ? end - start : d))
  const int = (v: number) => b.constant([v], [1], "int64")
  return b.node("Slice", [x, int(start), int(end), int(axis)], { type: b.meta(x).type, shape })
}

/**
 * cos and sin of the rotary angles pos · θ^(−2i/headDim), [count, headDim/2] row-major, for the
 * positions first..first+count−1. Computed here in float64, not in the graph: the angles grow to
 * the context length, where f32 keeps few digits of their fraction (and onnxruntime's CPU has no
 * float64 Cos).
 */
export const rotaryTables = (spec: FamilySpec, first: number, count: number) => {
  const half = spec.headDim / 2
  const cos = new Float64Array(count * half)
  const sin = new Float64Array(count * half)
  for (let p = 0; p < count; p++) {
    for (let i = 0; i < half; i++) {
      const angle = (first + p) * (1 / spec.ropeTheta ** ((2 * i) / spec.headDim))
      cos[p * half + i] = Math.cos(angle)
      sin[p * half + i] = Math.sin(angle)
    }
  }
  return { cos, sin }
}

/** Rotary embedding, "rotate_half" form: x · cos + [−x₂, x₁] · sin for x [S, n, headDim]. */
const rope = (b: GraphBuilder, x: string, t: { cos: string; sin: string }, headDim: number): string => {
  const half = headDim / 2
  // [S, half] → [S, 1, headDim]: both halves turn by the same angle, every head alike.
  const full = (v: string) => b.unsqueeze(b.concat([v, v], -1), [1])
  const rotated = b.concat([b.neg(slice(b, x, 2, half, headDim)), slice(b, x, 2, 0, half)], 2)
  return b.add(b.mul(x, full(t.cos)), b.mul(rotated, full(t.sin)))
}

/**
 * Attention of S new positions over P cached ones (P may be 0: concatenating an empty past is a
 * no-op) with its residual. Query head h reads kv head ⌊h / group⌋ (transformers' repeat_kv),
 * done by broadcasting [kvHeads, group, S, hd] against [kvHeads, 1, hd, L] instead of copying.
 */
const attentionGraph = (spec: FamilySpec, float: FloatType) => {
  const { hidden: d, heads: H, kvHeads: KV, headDim: hd, rmsEps: eps } = spec
  const group = H / KV
  const b = new GraphBuilder("family.attention.step", float)
  const x = b.input("x", ["S", d])
  const rot = { cos: b.input("cos", ["S", hd / 2]), sin: b.input("sin", ["S", hd / 2]) }
  const pastK = b.input("past.k", [KV, "P", hd])
  const pastV = b.input("past.v", [KV, "P", hd])
  const mask = b.input("mask", ["S", "L"])
  const shapes: Record<string, ReadonlyArray<Dim>> = {
    norm: [d],
    q_proj: [H * hd, d],
    k_proj: [KV * hd, d],
    v_proj: [KV * hd, d],
    o_proj: [d, H * hd],
    q_norm: [hd],
    k_norm: [hd]
  }
  const w = Object.fromEntries(attentionRoles(spec).map((r) => [r, b.input(r, shapes[r]!)])) as Record<string, string>

  const xn = rmsNorm(b, x, w.norm!, eps)
  // Qwen3 normalises each head's q and k before the rotation.
  const heads = (v: string, n: number, norm: string | undefined) => {
    const split = b.reshape(v, [0, n, hd])
    return rope(b, norm === undefined ? split : rmsNorm(b, split, norm, eps), rot, hd)
  }
  const q = heads(linear(b, xn, w.q_proj!), H, w.q_norm) // [S, H, hd]
  const kNew = b.transpose(heads(linear(b, xn, w.k_proj!), KV, w.k_norm), [1, 0, 2]) // [KV, S, hd]
  const vNew = b.transpose(b.reshape(linear(b, xn, w.v_proj!), [0, KV, hd]), [1, 0, 2])
  const k = b.concat([pastK, kNew], 1) // [KV, L, hd]
  const v = b.concat([pastV, vNew], 1)

  const qg = b.transpose(b.reshape(q, [0, KV, group, hd]), [1, 2, 0, 3]) // [KV, group, S, hd]
  const kT = b.transpose(b.unsqueeze(k, [1]), [0, 1, 3, 2]) // [KV, 1, hd, L]
  const scores = b.add(b.mul(b.matmul(qg, kT), b.scalar(1 / Math.sqrt(hd))), mask)
  const ctx = b.matmul(b.softmax(scores, -1), b.unsqueeze(v, [1])) // [KV, group, S, hd]
  const merged = b.reshape(b.transpose(ctx, [2, 0, 1, 3]), [0, H * hd])
  const y = b.add(x, linear(b, merged, w.o_proj!))
  return b.build([b.identity(y, "y"), b.identity(k, "k"), b.identity(v, "v")])
}

/** post_attention_layernorm, then the router's softmax over experts; xn is the experts' input. */
const routerGraph = (spec: FamilySpec, float: FloatType) => {
  const b = new GraphBuilder("family.router", float)
  const h = b.input("h", ["N", spec.hidden])
  const xn = rmsNorm(b, h, b.input("norm", [spec.hidden]), spec.rmsEps)
  const probs = b.softmax(linear(b, xn, b.input("gate", [spec.experts, spec.hidden])), -1)
  return b.build([b.identity(xn, "xn"), b.identity(probs, "probs")])
}

/** SwiGLU expert: down(silu(gate x) ⊙ up x). */
const expertGraph = (spec: FamilySpec, float: FloatType) => {
  const { hidden: d, expertFF: ff } = spec
  const b = new GraphBuilder("family.expert", float)
  const x = b.input("x", ["N", d])
  const [gate, up, down] = [b.input("gate", [ff, d]), b.input("up", [ff, d]), b.input("down", [d, ff])]
  const y = linear(b, b.mul(silu(b, linear(b, x, gate)), linear(b, x, up)), down)
  return b.build([b.identity(y, "y")])
}

/** Final RMSNorm and the vocabulary projection. */
const headGraph = (spec: FamilySpec, float: FloatType) => {
  const b = new GraphBuilder("family.head", float)
  const h = b.input("h", ["N", spec.hidden])
  const logits = linear(b, rmsNorm(b, h, b.input("norm", [spec.hidden]), spec.rmsEps), b.input("w", [spec.vocab, spec.hidden]))
  return b.build([b.identity(logits, "logits")])
}

/** IR graphs of every part kind (exported for tests and tools). */
export const familyForwardGraphs = (spec: FamilySpec, float: FloatType) => ({
  attention: attentionGraph(spec, float),
  router: routerGraph(spec, float),
  expert: expertGraph(spec, float),
  head: headGraph(spec, float)
})

export interface FamilyGraphs {
  readonly spec: FamilySpec
  readonly precision: Precision
  /** x, cos, sin (`rotaryTables`), past.k, past.v, mask, weights → y, k, v. */
  readonly attention: CompiledGraph
  /** h, weights → xn, probs. */
  readonly router: CompiledGraph
  /** x, weights → y. */
  readonly expert: CompiledGraph
  /** h, norm, w → logits. */
  readonly head: CompiledGraph
}

export const buildFamilyGraphs = (spec: FamilySpec, precision: Precision = "f32"): FamilyGraphs => {
  const g = familyForwardGraphs(spec, floatType(precision))
  return { spec, precision, attention: compile(g.attention), router: compile(g.router), expert: compile(g.expert), head: compile(g.head) }
}

/** What the graphs depend on: two specs with the same key can share them (layers, normTopK, tying, context and dtype do not matter). */
export const familyGraphsKey = (s: FamilySpec): string =>
  [s.family, s.vocab, s.hidden, s.heads, s.kvHeads, s.headDim, s.experts, s.expertFF, s.ropeTheta, s.rmsEps].join(",")

/** `buildFamilyGraphs`, built once per graph key and precision. */
export const makeFamilyGraphsCache = () => {
  const cache = new Map<string, FamilyGraphs>()
  return (spec: FamilySpec, precision: Precision = "f32"): FamilyGraphs => {
    const key = `${familyGraphsKey(spec)},${precision}`
    const hit = cache.get(key)
    if (hit !== undefined) return hit.spec === spec ? hit : { ...hit, spec }
    const built = buildFamilyGraphs(spec, precision)
    cache.set(key, built)
    return built
  }
}
