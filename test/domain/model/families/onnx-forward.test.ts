import { Effect } from "effect"
import { describe, expect, layer } from "@effect/vitest"
import type { FamilySpec } from "../../../../domain/model/families/config.ts"
import { emptyFamilyCache, familySession, familyStep, localFamilyExperts, type FamilyStep } from "../../../../domain/model/families/forward.ts"
import { routeOf, type ExpertCompute, type ModelError } from "../../../../domain/model/forward.ts"
import { buildFamilyGraphs } from "../../../../domain/model/onnx/families.ts"
import { referenceForward, type ReferenceOutput } from "../../../support/family-reference.ts"
import { familyWeights, tinyMixtral, tinyQwen3Moe } from "../../../support/family-weights.ts"
import { TestExecutor, TestExecutor64 } from "../support.ts"

const cases: ReadonlyArray<{ readonly name: string; readonly spec: FamilySpec; readonly seed: number }> = [
  { name: "mixtral", spec: tinyMixtral, seed: 11 },
  { name: "qwen3_moe", spec: tinyQwen3Moe, seed: 12 },
  { name: "qwen3_moe, tied embeddings, raw top-k weights", spec: { ...tinyQwen3Moe, tieEmbeddings: true, normTopK: false }, seed: 13 }
]

const PROMPT = 7
const tokensOf = (spec: FamilySpec, n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 29 + salt * 7 + 3) % spec.vocab)

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return a.length === b.length ? m : Infinity
}
const maxAbs = (a: ArrayLike<number>) => maxDiff(a, new Float64Array(a.length))

const refRow = (ref: ReferenceOutput, vocab: number, pos: number) => ref.logits.subarray(pos * vocab, (pos + 1) * vocab)

/** Every token of a step routed as the reference routed position `first + t`: same experts in order, weights within 1e-5. */
const expectRouting = (got: FamilyStep, ref: ReferenceOutput, first: number) => {
  for (let l = 0; l < got.routing.layers; l++) {
    for (let t = 0; t < got.routing.tokens; t++) {
      const want = ref.routing[l]![first + t]!
      const route = routeOf(got.routing, l, t)
      expect(route.map((r) => r.expert)).toEqual(want.experts)
      expect(maxDiff(route.map((r) => r.gate), want.weights)).toBeLessThan(1e-5)
    }
  }
}

/** Prefills the prompt, then steps the rest one token at a time; returns the largest logit difference to the reference. */
const decodeAgainstReference = (spec: FamilySpec, precision: "f32" | "f64", seed: number) =>
  Effect.gen(function* () {
    const weights = familyWeights(spec, seed)
    const tokens = tokensOf(spec, 12, seed)
    const ref = referenceForward(spec, weights, tokens)
    const session = familySession(spec, buildFamilyGraphs(spec, precision), weights)
    let worst = 0
    let scale = 0
    const prefill = yield* session.step(tokens.slice(0, PROMPT))
    expectRouting(prefill, ref, 0)
    worst = maxDiff(prefill.logits, refRow(ref, spec.vocab, PROMPT - 1))
    for (let pos = PROMPT; pos < tokens.length; pos++) {
      const out = yield* session.step([tokens[pos]!])
      expectRouting(out, ref, pos)
      worst = Math.max(worst, maxDiff(out.logits, refRow(ref, spec.vocab, pos)))
      scale = Math.max(scale, maxAbs(refRow(ref, spec.vocab, pos)))
    }
    expect(session.position()).toBe(tokens.length)
    return { worst, scale }
  })

layer(TestExecutor)((it) => {
  describe("family decoding on onnxruntime (f32) agrees with the float64 reference", () => {
    for (const c of cases) {
      // Measured: max |Δlogit| 2.5e-7 (mixtral), 2.1e-7 (qwen3), 7.5e-7 (tied, logits up to 9); 1e-5 leaves room for other kernels.
      it.effect(`${c.name}: prefill then steps; logits within 1e-5, same experts and weights`, () =>
        Effect.gen(function* () {
          const { worst, scale } = yield* decodeAgainstReference(c.spec, "f32", c.seed)
          expect(scale).toBeGreaterThan(1)
          expect(worst).toBeLessThan(1e-5)
        })
      )

      // Different matmul shapes sum in a different order: equal to f32 rounding, not bit for bit.
      it.effect(`${c.name}: a prompt prefilled at once equals it fed token by token`, () =>
        Effect.gen(function* () {
          const weights = familyWeights(c.spec, c.seed)
          const graphs = buildFamilyGraphs(c.spec)
          const tokens = tokensOf(c.spec, 9, c.seed)
          const whole = yield* familyStep(c.spec, graphs, weights, emptyFamilyCache(c.spec, graphs), tokens)
          let cache = emptyFamilyCache(c.spec, graphs)
          let last: FamilyStep | undefined
          for (const [t, token] of tokens.entries()) {
            const one = yield* familyStep(c.spec, graphs, weights, cache, [token])
            for (let l = 0; l < c.spec.layers; l++) {
              const [a, b] = [routeOf(one.routing, l, 0), routeOf(whole.routing, l, t)]
              expect(a.map((r) => r.expert)).toEqual(b.map((r) => r.expert))
              expect(maxDiff(a.map((r) => r.gate), b.map((r) => r.gate))).toBeLessThan(1e-6)
            }
            cache = one.cache
            last = one
          }
          expect(cache.positions).toBe(whole.cache.positions)
          expect(maxDiff(last!.logits, whole.logits)).toBeLessThan(1e-5)
          for (let l = 0; l < c.spec.layers; l++) {
            expect(maxDiff(cache.layers[l]!.k, whole.cache.layers[l]!.k)).toBeLessThan(1e-5)
            expect(maxDiff(cache.layers[l]!.v, whole.cache.layers[l]!.v)).toBeLessThan(1e-5)
          }
        })
      )
    }
  })
})

layer(TestExecutor)((it) => {
  describe("family decoding: experts elsewhere, bad input", () => {
    it.effect("each layer's experts go through the given compute, which names who served them", () =>
      Effect.gen(function* () {
        const spec = tinyMixtral
        const weights = familyWeights(spec, 11)
        const graphs = buildFamilyGraphs(spec)
        const asked: Array<{ layer: number; experts: number[] }> = []
        const local = localFamilyExperts(spec, graphs, weights)
        const remote: ExpertCompute<ModelError> = (layer, work) => {
          asked.push({ layer, experts: work.map((w) => w.expert) })
          return Effect.map(local(layer, work), (outs) => outs.map((o, i) => ({ ...o, served: { node: `node${work[i]!.expert}`, request: `r${layer}` } })))
        }
        const tokens = tokensOf(spec, 5, 1)
        const here = yield* familySession(spec, graphs, weights).step(tokens)
        const there = yield* familySession(spec, graphs, weights, remote).step(tokens)
        expect(Array.from(there.logits)).toEqual(Array.from(here.logits))
        expect(asked.map((a) => a.layer)).toEqual([0, 1])
        for (const [l, served] of there.routing.servedBy!.entries()) {
          expect([...served.keys()]).toEqual(asked[l]!.experts)
          for (const [e, s] of served) expect(s.node).toBe(`node${e}`)
        }
      })
    )

    it.effect("a token outside the vocabulary or beyond the context is refused, and the cache stays where it was", () =>
      Effect.gen(function* () {
        const spec = tinyQwen3Moe
        const session = familySession(spec, buildFamilyGraphs(spec), familyWeights(spec, 12))
        yield* session.step([1, 2, 3])
        const bad = yield* Effect.flip(session.step([spec.vocab]))
        expect(bad._tag).toBe("InvalidModelInput")
        const long = yield* Effect.flip(session.step(Array.from({ length: spec.context - 2 }, () => 0)))
        expect(long.message).toContain("context")
        expect(session.position()).toBe(3)
      })
    )

    it.effect("missing weights are named", () =>
      Effect.gen(function* () {
        const spec = tinyMixtral
        const weights = familyWeights(spec, 11)
        weights.delete("model.layers.1.self_attn.o_proj.weight")
        const err = yield* Effect.flip(familySession(spec, buildFamilyGraphs(spec), weights).step([1]))
        expect(err.message).toContain("model.layers.1.self_attn.o_proj.weight is missing")
      })
    )
  })
})

layer(TestExecutor64)((it) => {
  describe("the same graphs in float64 compute exactly the reference's function", () => {
    for (const c of cases) {
      it.effect(`${c.name}: logits within 1e-12`, () =>
        Effect.gen(function* () {
          const { worst } = yield* decodeAgainstReference(c.spec, "f64", c.seed)
          expect(worst).toBeLessThan(1e-12)
        })
      )
    }
  })
})
