import { describe, expect, it } from "vitest"
import fc from "fast-check"
import type { FamilySpec } from "../../../../domain/model/families/config.ts"
import { checkpointLayout } from "../../../../domain/model/families/layout.ts"
import { referenceForward, referenceSession, type WeightTensor } from "../../../support/family-reference.ts"
import { familyWeights, tinyMixtral, tinyQwen3Moe } from "../../../support/family-weights.ts"

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

/** Steps through `tokens` one at a time, collecting logits [T, vocab] and routing [layer][token]. */
const stepped = (spec: FamilySpec, weights: Map<string, WeightTensor>, tokens: ReadonlyArray<number>) => {
  const session = referenceSession(spec, weights)
  const logits = new Float64Array(tokens.length * spec.vocab)
  const routing = Array.from({ length: spec.layers }, () => [] as Array<{ experts: number[]; weights: number[] }>)
  tokens.forEach((t, i) => {
    const s = session.step(t)
    logits.set(s.logits, i * spec.vocab)
    s.routing.forEach((r, l) => routing[l]!.push(r))
  })
  return { logits, routing, position: session.position() }
}

/** Weights from explicit values, zeros for every tensor not given. */
const explicitWeights = (spec: FamilySpec, values: Record<string, number[]>): Map<string, WeightTensor> =>
  new Map(
    checkpointLayout(spec).flatMap((p) =>
      p.tensors.map((t) => {
        const data = new Float64Array(t.shape.reduce((a, b) => a * b, 1))
        data.set(values[t.checkpointName] ?? [])
        return [t.checkpointName, { shape: t.shape, data }] as const
      })
    )
  )

const families = [
  ["mixtral", tinyMixtral],
  ["qwen3_moe", tinyQwen3Moe],
  ["qwen3_moe, tied, normTopK false", { ...tinyQwen3Moe, tieEmbeddings: true, normTopK: false }]
] as const
const tokens = [3, 17, 0, 47, 17, 17, 5, 29, 11, 3]

describe("the float64 reference forward of Hugging Face MoE families", () => {
  for (const [label, spec] of families) {
    it(`${label}: stepping token by token with the key/value cache equals the full forward`, () => {
      const weights = familyWeights(spec, 7)
      const full = referenceForward(spec, weights, tokens)
      const inc = stepped(spec, weights, tokens)
      expect(full.logits).toHaveLength(tokens.length * spec.vocab)
      expect(maxAbsDiff(inc.logits, full.logits)).toBeLessThan(1e-9)
      expect(inc.position).toBe(tokens.length)
      for (let l = 0; l < spec.layers; l++) {
        for (let t = 0; t < tokens.length; t++) {
          expect(inc.routing[l]![t]!.experts).toEqual(full.routing[l]![t]!.experts)
          expect(maxAbsDiff(inc.routing[l]![t]!.weights, full.routing[l]![t]!.weights)).toBeLessThan(1e-12)
        }
      }
      // Activations stay O(1): the logits are neither vanishing nor exploding.
      const scale = maxAbsDiff(full.logits, new Float64Array(full.logits.length))
      expect(scale).toBeGreaterThan(0.05)
      expect(scale).toBeLessThan(50)
    })
  }

  it("is causal: changing a later token leaves every earlier position's logits identical", () => {
    for (const spec of [tinyMixtral, tinyQwen3Moe]) {
      const weights = familyWeights(spec, 11)
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: spec.vocab - 1 }), { minLength: 2, maxLength: 8 }),
          fc.nat(),
          fc.integer({ min: 1, max: spec.vocab - 1 }),
          (seq, at, shift) => {
            const i = 1 + (at % (seq.length - 1))
            const changed = seq.map((t, j) => (j === i ? (t + shift) % spec.vocab : t))
            const a = referenceForward(spec, weights, seq)
            const b = referenceForward(spec, weights, changed)
            expect(Array.from(b.logits.subarray(0, i * spec.vocab))).toEqual(Array.from(a.logits.subarray(0, i * spec.vocab)))
            expect(maxAbsDiff(a.logits.subarray(i * spec.vocab), b.logits.subarray(i * spec.vocab))).toBeGreaterThan(0)
          }
        ),
        { numRuns: 25 }
      )
    }
  })

  it("grouped-query attention equals multi-head attention with each kv head repeated for its query heads", () => {
    for (const spec of [tinyMixtral, tinyQwen3Moe]) {
      const weights = familyWeights(spec, 5)
      const mha: FamilySpec = { ...spec, kvHeads: spec.heads }
      const group = spec.heads / spec.kvHeads
      const rowBlock = spec.headDim * spec.hidden
      const repeated = new Map(weights)
      for (let l = 0; l < spec.layers; l++) {
        for (const proj of ["k_proj", "v_proj"]) {
          const name = `model.layers.${l}.self_attn.${proj}.weight`
          const w = weights.get(name)!
          const data = new Float32Array(spec.heads * rowBlock)
          // kv head j of the MHA model is kv head floor(j / group) of the grouped one (transformers' repeat_kv).
          for (let j = 0; j < spec.heads; j++) data.set(w.data.subarray(Math.floor(j / group) * rowBlock, (Math.floor(j / group) + 1) * rowBlock), j * rowBlock)
          repeated.set(name, { shape: [spec.heads * spec.headDim, spec.hidden], data })
        }
      }
      const grouped = referenceForward(spec, weights, tokens)
      const plain = referenceForward(mha, repeated, tokens)
      expect(maxAbsDiff(plain.logits, grouped.logits)).toBeLessThan(1e-12)
    }
  })

  it("renormalises the top-k routing weights to sum 1 iff normTopK, otherwise keeps the softmax probabilities", () => {
    const spec = tinyQwen3Moe
    const weights = familyWeights(spec, 3)
    const norm = referenceForward(spec, weights, tokens).routing
    const raw = referenceForward({ ...spec, normTopK: false }, weights, tokens).routing
    const mixtral = referenceForward(tinyMixtral, familyWeights(tinyMixtral, 3), tokens).routing
    for (const r of [...norm.flat(), ...mixtral.flat()]) {
      expect(r.experts).toHaveLength(2)
      expect(Math.abs(r.weights[0]! + r.weights[1]! - 1)).toBeLessThan(1e-12)
      expect(r.weights[0]).toBeGreaterThanOrEqual(r.weights[1]!)
    }
    // Only layer 0 sees the same router input in both runs: after it, the MoE outputs differ by the weights.
    raw[0]!.forEach((r, i) => {
      const n = norm[0]![i]!
      const sum = r.weights[0]! + r.weights[1]!
      expect(r.experts).toEqual(n.experts)
      expect(sum).toBeLessThan(1)
      expect(maxAbsDiff(r.weights.map((w) => w / sum), n.weights)).toBeLessThan(1e-12)
    })
  })

  it("with attention silenced, the unnormalised routing weights are exactly the router's softmax probabilities", () => {
    const spec: FamilySpec = { ...tinyQwen3Moe, layers: 1, normTopK: false }
    const weights = familyWeights(spec, 9)
    weights.set("model.layers.0.self_attn.o_proj.weight", { shape: [16, 32], data: new Float32Array(16 * 32) })
    const { routing } = referenceForward(spec, weights, tokens)
    const embed = weights.get("model.embed_tokens.weight")!.data
    const post = weights.get("model.layers.0.post_attention_layernorm.weight")!.data
    const gate = weights.get("model.layers.0.mlp.gate.weight")!.data
    tokens.forEach((token, t) => {
      const x = Array.from(embed.subarray(token * 16, token * 16 + 16))
      const inv = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / 16 + spec.rmsEps)
      const xn = x.map((v, i) => v * inv * post[i]!)
      const logits = [0, 1, 2, 3].map((e) => xn.reduce((a, v, i) => a + gate[e * 16 + i]! * v, 0))
      const z = logits.reduce((a, v) => a + Math.exp(v), 0)
      const probs = logits.map((v) => Math.exp(v) / z)
      const best = [0, 1, 2, 3].sort((a, b) => probs[b]! - probs[a]!).slice(0, 2)
      expect(routing[0]![t]!.experts).toEqual(best)
      expect(maxAbsDiff(routing[0]![t]!.weights, best.map((e) => probs[e]!))).toBeLessThan(1e-12)
    })
  })

  it("computes a one-layer model by hand", () => {
    // hidden 2, vocab 3, one head of dim 2, two experts of width 1, top-1. o_proj is zero, so attention adds nothing.
    const spec: FamilySpec = {
      ...tinyMixtral,
      vocab: 3,
      hidden: 2,
      layers: 1,
      heads: 1,
      kvHeads: 1,
      headDim: 2,
      experts: 2,
      topK: 1,
      expertFF: 1,
      rmsEps: 1e-5
    }
    const p = "model.layers.0."
    const weights = explicitWeights(spec, {
      "model.embed_tokens.weight": [1, 0, 0, 1, 1, 1],
      [`${p}self_attn.q_proj.weight`]: [1, 2, 3, 4],
      [`${p}self_attn.k_proj.weight`]: [1, 0, 0, 1],
      [`${p}self_attn.v_proj.weight`]: [5, 6, 7, 8],
      [`${p}input_layernorm.weight`]: [1, 1],
      [`${p}post_attention_layernorm.weight`]: [1, 1],
      [`${p}block_sparse_moe.gate.weight`]: [1, 0, 0, 1],
      [`${p}block_sparse_moe.experts.0.w1.weight`]: [1, 0],
      [`${p}block_sparse_moe.experts.0.w3.weight`]: [2, 0],
      [`${p}block_sparse_moe.experts.0.w2.weight`]: [1, 0.5],
      [`${p}block_sparse_moe.experts.1.w1.weight`]: [0, 1],
      [`${p}block_sparse_moe.experts.1.w3.weight`]: [0, 1],
      [`${p}block_sparse_moe.experts.1.w2.weight`]: [3, 3],
      "model.norm.weight": [1, 1],
      "lm_head.weight": [1, 0, 0, 1, 1, -2]
    })
    const eps = spec.rmsEps
    const silu = (v: number) => v / (1 + Math.exp(-v))
    const { logits, routing } = referenceForward(spec, weights, [0, 2])

    // Token 0: x = [1, 0]; normed [s, 0]; router logits [s, 0] pick expert 0 with weight 1 (renormalised).
    const s = 1 / Math.sqrt(0.5 + eps)
    const h = silu(s) * 2 * s // w2 · (silu(w1 xn) ⊙ w3 xn) = [h, h/2]
    const x0 = [1 + h, h / 2]
    const r0 = 1 / Math.sqrt((x0[0]! ** 2 + x0[1]! ** 2) / 2 + eps)
    expect(routing[0]![0]).toEqual({ experts: [0], weights: [1] })
    expect(maxAbsDiff(logits.subarray(0, 3), [x0[0]! * r0, x0[1]! * r0, (x0[0]! - 2 * x0[1]!) * r0])).toBeLessThan(1e-12)
    expect(Math.abs(logits[2]! - r0)).toBeLessThan(1e-12) // (1 + h) − 2 · h/2 = 1

    // Token 2: x = [1, 1]; the router logits tie, and the tie goes to the lower index, expert 0.
    const t = 1 / Math.sqrt(1 + eps)
    const g = silu(t) * 2 * t
    const x1 = [1 + g, 1 + g / 2]
    const r1 = 1 / Math.sqrt((x1[0]! ** 2 + x1[1]! ** 2) / 2 + eps)
    expect(routing[0]![1]).toEqual({ experts: [0], weights: [1] })
    expect(maxAbsDiff(logits.subarray(3, 6), [x1[0]! * r1, x1[1]! * r1, (x1[0]! - 2 * x1[1]!) * r1])).toBeLessThan(1e-12)
  })

  it("refuses weights that do not fit the layout, tokens outside the vocabulary and sequences beyond the context", () => {
    const weights = familyWeights(tinyMixtral, 1)
    const missing = new Map(weights)
    missing.delete("model.layers.1.block_sparse_moe.experts.2.w2.weight")
    expect(() => referenceForward(tinyMixtral, missing, [1])).toThrow("model.layers.1.block_sparse_moe.experts.2.w2.weight is missing")
    const misshapen = new Map(weights).set("model.norm.weight", { shape: [8], data: new Float32Array(8) })
    expect(() => referenceForward(tinyMixtral, misshapen, [1])).toThrow("model.norm.weight has shape [8] (8 values), expected [16]")
    expect(() => referenceForward(tinyMixtral, (n) => weights.get(n), [48])).toThrow("token 48 is outside the vocabulary [0, 48)")
    expect(() => referenceForward({ ...tinyMixtral, context: 2 }, weights, [1, 2, 3])).toThrow("position 2 is beyond the context of 2 tokens")
    const session = referenceSession({ ...tinyMixtral, context: 1 }, weights)
    session.step(4)
    expect(() => session.step(5)).toThrow("position 1 is beyond the context of 1 tokens")
  })
})
