/**
 * A plain float64 forward pass of Mixtral and Qwen3-MoE exactly as Hugging Face transformers'
 * `modeling_mixtral.py` / `modeling_qwen3_moe.py` compute it in eval mode: the yardstick that
 * faster executors and imported checkpoints are checked against. Readable rather than fast, for
 * tiny configs. transformers computes rotary tables and softmaxes in float32; here everything is
 * float64, so expect agreement with it to float32 precision, not bit for bit.
 *
 * Its inputs are built to fit (by the layout and a tokenizer): a missing or misshapen tensor, a
 * token outside the vocabulary or a sequence beyond the context throws a RangeError.
 */
import type { FamilySpec } from "../../domain/model/families/config.ts"
import { checkpointLayout } from "../../domain/model/families/layout.ts"

export type WeightTensor = { readonly shape: ReadonlyArray<number>; readonly data: ArrayLike<number> }
/** A checkpoint's tensors by checkpoint name, values as stored after dtype decoding. */
export type WeightLookup = ((checkpointName: string) => WeightTensor | undefined) | ReadonlyMap<string, WeightTensor>

/** The experts one token went to in one layer, best first, and the weight each output got. */
export type Routing = { readonly experts: number[]; readonly weights: number[] }
export type ReferenceOutput = {
  /** [T, vocab], row-major. */
  readonly logits: Float64Array
  /** [layer][token]. */
  readonly routing: Array<Array<Routing>>
}
export type ReferenceStep = {
  readonly logits: Float64Array
  /** [layer]. */
  readonly routing: Array<Routing>
}
export type ReferenceSession = {
  /** Feeds the next token (at position `position()`) and returns its logits. */
  readonly step: (token: number) => ReferenceStep
  readonly position: () => number
}

type Expert = { readonly gate: Float64Array; readonly up: Float64Array; readonly down: Float64Array }
type Layer = {
  readonly inputNorm: Float64Array
  readonly q: Float64Array
  readonly k: Float64Array
  readonly v: Float64Array
  readonly o: Float64Array
  readonly qNorm: Float64Array | undefined
  readonly kNorm: Float64Array | undefined
  readonly postNorm: Float64Array
  readonly router: Float64Array
  readonly experts: ReadonlyArray<Expert>
}
type Model = {
  readonly spec: FamilySpec
  readonly embed: Float64Array
  readonly layers: ReadonlyArray<Layer>
  readonly finalNorm: Float64Array
  /** The embedding matrix when tied. */
  readonly lmHead: Float64Array
  readonly invFreq: Float64Array
}

/** Reads every tensor the layout names, checking its shape, into float64 arrays keyed by checkpoint name. */
const loadTensors = (spec: FamilySpec, weights: WeightLookup): Map<string, Float64Array> => {
  const get = typeof weights === "function" ? weights : (n: string) => weights.get(n)
  const out = new Map<string, Float64Array>()
  for (const part of checkpointLayout(spec)) {
    for (const t of part.tensors) {
      const w = get(t.checkpointName)
      if (w === undefined) throw new RangeError(`reference weights: ${t.checkpointName} is missing`)
      const numel = t.shape.reduce((a, b) => a * b, 1)
      if (w.shape.length !== t.shape.length || w.shape.some((x, i) => x !== t.shape[i]) || w.data.length !== numel) {
        throw new RangeError(`reference weights: ${t.checkpointName} has shape [${w.shape}] (${w.data.length} values), expected [${t.shape}]`)
      }
      out.set(t.checkpointName, Float64Array.from(w.data))
    }
  }
  return out
}

const loadModel = (spec: FamilySpec, weights: WeightLookup): Model => {
  const tensors = loadTensors(spec, weights)
  const w = (name: string): Float64Array => tensors.get(name)!
  const moe = spec.family === "mixtral" ? "block_sparse_moe" : "mlp"
  const [gate, up, down]: readonly [string, string, string] = spec.family === "mixtral" ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"]
  const layers: Array<Layer> = []
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}.`
    const experts: Array<Expert> = []
    for (let e = 0; e < spec.experts; e++) {
      const ep = `${p}${moe}.experts.${e}.`
      experts.push({ gate: w(`${ep}${gate}.weight`), up: w(`${ep}${up}.weight`), down: w(`${ep}${down}.weight`) })
    }
    const qwen = spec.family === "qwen3_moe"
    layers.push({
      inputNorm: w(`${p}input_layernorm.weight`),
      q: w(`${p}self_attn.q_proj.weight`),
      k: w(`${p}self_attn.k_proj.weight`),
      v: w(`${p}self_attn.v_proj.weight`),
      o: w(`${p}self_attn.o_proj.weight`),
      qNorm: qwen ? w(`${p}self_attn.q_norm.weight`) : undefined,
      kNorm: qwen ? w(`${p}self_attn.k_norm.weight`) : undefined,
      postNorm: w(`${p}post_attention_layernorm.weight`),
      router: w(`${p}${moe}.gate.weight`),
      experts
    })
  }
  const embed = w("model.embed_tokens.weight")
  // inv_freq[i] = theta^(-2i/headDim), as transformers' default rotary embedding.
  const invFreq = new Float64Array(spec.headDim / 2).map((_, i) => 1 / spec.ropeTheta ** ((2 * i) / spec.headDim))
  return { spec, embed, layers, finalNorm: w("model.norm.weight"), lmHead: spec.tieEmbeddings ? embed : w("lm_head.weight"), invFreq }
}

/** y = W x for a PyTorch Linear weight W of shape [rows, cols]. */
const linear = (w: Float64Array, x: ArrayLike<number>, rows: number, cols: number): Float64Array => {
  const y = new Float64Array(rows)
  for (let r = 0; r < rows; r++) {
    let s = 0
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!
    y[r] = s
  }
  return y
}

/** x * rsqrt(mean(x²) + eps) * w over x[offset, offset + n). */
const rmsNormAt = (x: Float64Array, offset: number, n: number, w: Float64Array, eps: number): void => {
  let ms = 0
  for (let i = 0; i < n; i++) ms += x[offset + i]! ** 2
  const inv = 1 / Math.sqrt(ms / n + eps)
  for (let i = 0; i < n; i++) x[offset + i] = x[offset + i]! * inv * w[i]!
}

const rmsNorm = (x: Float64Array, w: Float64Array, eps: number): Float64Array => {
  const y = Float64Array.from(x)
  rmsNormAt(y, 0, y.length, w, eps)
  return y
}

/** Non-interleaved rotary embedding ("rotate_half"): dimension i turns with i + headDim/2. */
const rotate = (x: Float64Array, offset: number, headDim: number, pos: number, invFreq: Float64Array): void => {
  const half = headDim / 2
  for (let i = 0; i < half; i++) {
    const angle = pos * invFreq[i]!
    const cos = Math.cos(angle)
    const sin = Math.sin(angle)
    const a = x[offset + i]!
    const b = x[offset + half + i]!
    x[offset + i] = a * cos - b * sin
    x[offset + half + i] = b * cos + a * sin
  }
}

const softmax = (xs: ArrayLike<number>): Float64Array => {
  let max = -Infinity
  for (let i = 0; i < xs.length; i++) max = Math.max(max, xs[i]!)
  const out = new Float64Array(xs.length)
  let sum = 0
  for (let i = 0; i < xs.length; i++) {
    out[i] = Math.exp(xs[i]! - max)
    sum += out[i]!
  }
  for (let i = 0; i < xs.length; i++) out[i] = out[i]! / sum
  return out
}

const silu = (x: number) => x / (1 + Math.exp(-x))

type Projected = { readonly q: Float64Array; readonly k: Float64Array; readonly v: Float64Array }

/** q, k, v of one position: projections, Qwen3's per-head q_norm/k_norm, then rotary embedding. */
const project = (m: Model, layer: Layer, x: Float64Array, pos: number): Projected => {
  const { hidden, heads, kvHeads, headDim, rmsEps } = m.spec
  const xn = rmsNorm(x, layer.inputNorm, rmsEps)
  const q = linear(layer.q, xn, heads * headDim, hidden)
  const k = linear(layer.k, xn, kvHeads * headDim, hidden)
  const v = linear(layer.v, xn, kvHeads * headDim, hidden)
  for (let h = 0; h < heads; h++) {
    if (layer.qNorm !== undefined) rmsNormAt(q, h * headDim, headDim, layer.qNorm, rmsEps)
    rotate(q, h * headDim, headDim, pos, m.invFreq)
  }
  for (let h = 0; h < kvHeads; h++) {
    if (layer.kNorm !== undefined) rmsNormAt(k, h * headDim, headDim, layer.kNorm, rmsEps)
    rotate(k, h * headDim, headDim, pos, m.invFreq)
  }
  return { q, k, v }
}

/**
 * One query position against `keys`/`values` (one entry per key position); `visible(s)` is the
 * causal mask. Query head h reads kv head floor(h / (heads / kvHeads)), as transformers' repeat_kv.
 * Returns o_proj of the concatenated heads.
 */
const attend = (m: Model, layer: Layer, q: Float64Array, keys: ReadonlyArray<Float64Array>, values: ReadonlyArray<Float64Array>, visible: (s: number) => boolean): Float64Array => {
  const { hidden, heads, kvHeads, headDim } = m.spec
  const group = heads / kvHeads
  const scale = 1 / Math.sqrt(headDim)
  const out = new Float64Array(heads * headDim)
  for (let h = 0; h < heads; h++) {
    const kvOff = Math.floor(h / group) * headDim
    // Additive mask as transformers: a hidden position scores -inf, so its probability is exactly 0.
    const scores = keys.map((k, s) => {
      if (!visible(s)) return -Infinity
      let dot = 0
      for (let i = 0; i < headDim; i++) dot += q[h * headDim + i]! * k[kvOff + i]!
      return dot * scale
    })
    const p = softmax(scores)
    for (let s = 0; s < values.length; s++) {
      if (p[s] === 0) continue
      for (let i = 0; i < headDim; i++) out[h * headDim + i] = out[h * headDim + i]! + p[s]! * values[s]![kvOff + i]!
    }
  }
  return linear(layer.o, out, hidden, heads * headDim)
}

/** The k largest probabilities, best first; equal ones go to the lower expert index. */
const topK = (probs: Float64Array, k: number): number[] =>
  Array.from(probs.keys())
    .sort((a, b) => probs[b]! - probs[a]! || a - b)
    .slice(0, k)

/** The sparse MoE block on the post-attention-normed state: Σ w · down(silu(gate x) ⊙ up x) over the top-k experts. */
const moe = (m: Model, layer: Layer, x: Float64Array): { readonly out: Float64Array; readonly routing: Routing } => {
  const { hidden, experts, topK: k, expertFF, normTopK, rmsEps } = m.spec
  const xn = rmsNorm(x, layer.postNorm, rmsEps)
  const probs = softmax(linear(layer.router, xn, experts, hidden))
  const chosen = topK(probs, k)
  const raw = chosen.map((e) => probs[e]!)
  const total = raw.reduce((a, b) => a + b, 0)
  const weights = normTopK ? raw.map((p) => p / total) : raw
  const out = new Float64Array(hidden)
  chosen.forEach((e, j) => {
    const ex = layer.experts[e]!
    const g = linear(ex.gate, xn, expertFF, hidden)
    const u = linear(ex.up, xn, expertFF, hidden)
    const act = g.map((gi, i) => silu(gi) * u[i]!)
    const y = linear(ex.down, act, hidden, expertFF)
    for (let i = 0; i < hidden; i++) out[i] = out[i]! + weights[j]! * y[i]!
  })
  return { out, routing: { experts: chosen, weights } }
}

const addInto = (x: Float64Array, y: Float64Array): void => {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!
}

const embedRow = (m: Model, token: number): Float64Array => {
  const { vocab, hidden } = m.spec
  if (!Number.isInteger(token) || token < 0 || token >= vocab) throw new RangeError(`reference: token ${token} is outside the vocabulary [0, ${vocab})`)
  return m.embed.slice(token * hidden, (token + 1) * hidden)
}

const checkPosition = (spec: FamilySpec, pos: number): void => {
  if (pos >= spec.context) throw new RangeError(`reference: position ${pos} is beyond the context of ${spec.context} tokens`)
}

const logitsOf = (m: Model, x: Float64Array): Float64Array =>
  linear(m.lmHead, rmsNorm(x, m.finalNorm, m.spec.rmsEps), m.spec.vocab, m.spec.hidden)

/** The whole sequence at once, every position attending to all with a causal mask. */
export const referenceForward = (spec: FamilySpec, weights: WeightLookup, tokens: ReadonlyArray<number>): ReferenceOutput => {
  const m = loadModel(spec, weights)
  checkPosition(spec, tokens.length - 1)
  const hs = tokens.map((t) => embedRow(m, t))
  const routing = m.layers.map((layer) => {
    const proj = hs.map((x, pos) => project(m, layer, x, pos))
    const keys = proj.map((p) => p.k)
    const values = proj.map((p) => p.v)
    const attended = proj.map((p, t) => attend(m, layer, p.q, keys, values, (s) => s <= t))
    hs.forEach((x, t) => addInto(x, attended[t]!))
    return hs.map((x) => {
      const { out, routing } = moe(m, layer, x)
      addInto(x, out)
      return routing
    })
  })
  const logits = new Float64Array(tokens.length * spec.vocab)
  hs.forEach((x, t) => logits.set(logitsOf(m, x), t * spec.vocab))
  return { logits, routing }
}

/** Token by token with a key/value cache per layer; stepping through a sequence equals `referenceForward` of it. */
export const referenceSession = (spec: FamilySpec, weights: WeightLookup): ReferenceSession => {
  const m = loadModel(spec, weights)
  const cache = m.layers.map(() => ({ keys: [] as Array<Float64Array>, values: [] as Array<Float64Array> }))
  let pos = 0
  const step = (token: number): ReferenceStep => {
    checkPosition(spec, pos)
    const x = embedRow(m, token)
    const routing = m.layers.map((layer, l) => {
      const c = cache[l]!
      const { q, k, v } = project(m, layer, x, pos)
      c.keys.push(k)
      c.values.push(v)
      addInto(x, attend(m, layer, q, c.keys, c.values, () => true))
      const r = moe(m, layer, x)
      addInto(x, r.out)
      return r.routing
    })
    pos++
    return { logits: logitsOf(m, x), routing }
  }
  return { step, position: () => pos }
}
