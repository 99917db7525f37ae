import { Effect, Either, Runtime } from "effect"
import fc from "fast-check"
import { describe, expect, layer } from "@effect/vitest"
import { expertsUsed, forward, routeOf, selectTopK } from "../../../domain/model/forward.ts"
import { initWeights } from "../../../domain/model/init.ts"
import { buildModelGraphs } from "../../../domain/model/onnx/graphs.ts"
import type { Executor } from "../../../domain/ports/executor.ts"
import { randomWeights, TestExecutor, TestExecutor64, tinySpec } from "./support.ts"
import { referenceForward } from "./reference.ts"

/**
 * fast-check's async properties take Promises: this turns effects into Promises on the calling
 * test's own runtime (its Executor), for use inside a property only.
 */
const promiseRunner = <R>() => Effect.map(Effect.runtime<R>(), (runtime) => Runtime.runPromise(runtime))

const graphs = buildModelGraphs(tinySpec)
const graphs64 = buildModelGraphs(tinySpec, "f64")

const maxAbs = (xs: ArrayLike<number>) => {
  let m = 0
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!))
  return m
}
/** max |a − b| relative to the largest |b| (elementwise relative error is meaningless near zero). */
const relError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m / maxAbs(b)
}

const batchArb = fc.integer({ min: 1, max: 2 }).chain((batch) =>
  fc.integer({ min: 1, max: tinySpec.context }).chain((seq) =>
    fc.record({
      batch: fc.constant(batch),
      seq: fc.constant(seq),
      tokens: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: batch * seq, maxLength: batch * seq }),
      seed: fc.integer({ min: 0, max: 1_000_000 })
    })
  )
)

// One f32 executor for the whole file; the f64 test and the determinism test bring their own.
layer(TestExecutor)((it) => {
  describe("forward on onnxruntime agrees with the plain TypeScript reference", () => {
    it.effect("f32 graphs: logits within 1e-4 relative, same experts, same gates, on random weights and tokens", () =>
      Effect.gen(function* () {
        const run = yield* promiseRunner<Executor>()
        let compared = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(batchArb, async ({ batch, seq, tokens, seed }) => {
              const w = randomWeights(tinySpec, seed)
              const ref = referenceForward(w, { batch, seq, tokens })
              // A near-tie in the router could be broken differently by f32 and f64 arithmetic.
              fc.pre(ref.minRoutingMargin > 1e-4)
              const out = await run(forward(graphs, w, { batch, seq, tokens }))
              expect(out.logits.length).toBe(batch * seq * 256)
              expect(relError(out.logits, ref.logits)).toBeLessThan(1e-4)
              expect(Array.from(out.routing.experts)).toEqual(Array.from(ref.experts))
              expect(relError(out.routing.gates, ref.gates)).toBeLessThan(1e-4)
              compared++
            }),
            { numRuns: 8, seed: 20250125 }
          )
        )
        expect(compared).toBeGreaterThan(4)
      })
    )

    it.effect("f64 graphs agree to 1e-9: the graphs compute exactly the reference's function", () =>
      Effect.gen(function* () {
        const w = randomWeights(tinySpec, 3)
        const tokens = Array.from({ length: 2 * 7 }, (_, i) => (i * 37 + 11) % 256)
        const ref = referenceForward(w, { batch: 2, seq: 7, tokens })
        const out = yield* forward(graphs64, w, { batch: 2, seq: 7, tokens }).pipe(Effect.provide(TestExecutor64))
        expect(relError(out.logits, ref.logits)).toBeLessThan(1e-9)
      })
    )

    it.effect("is causal: logits at a position do not depend on later tokens", () =>
      Effect.gen(function* () {
        const w = randomWeights(tinySpec, 4)
        const a = yield* forward(graphs, w, { batch: 1, seq: 6, tokens: [1, 2, 3, 4, 5, 6] })
        const b = yield* forward(graphs, w, { batch: 1, seq: 6, tokens: [1, 2, 3, 99, 200, 7] })
        expect(Array.from(a.logits.subarray(0, 3 * 256))).toEqual(Array.from(b.logits.subarray(0, 3 * 256)))
        expect(Array.from(a.logits.subarray(3 * 256, 4 * 256))).not.toEqual(Array.from(b.logits.subarray(3 * 256, 4 * 256)))
      })
    )
  })

  describe("determinism", () => {
    it.effect("same seed: byte-identical forward output, even across separate executors (fresh sessions)", () =>
      Effect.gen(function* () {
        const tokens = Array.from("the same seed gives the same bytes", (c) => c.charCodeAt(0)).slice(0, 16)
        // A fresh executor for each run, released when the run ends.
        const run = (w: ReturnType<typeof initWeights>) =>
          forward(graphs, w, { batch: 2, seq: 8, tokens }).pipe(
            Effect.map((r) => Buffer.from(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength)),
            Effect.provide(TestExecutor)
          )
        const a = yield* run(initWeights(tinySpec))
        const b = yield* run(initWeights({ ...tinySpec }))
        const c = yield* run(initWeights({ ...tinySpec, seed: tinySpec.seed + 1 }))
        expect(a.equals(b)).toBe(true)
        expect(a.equals(c)).toBe(false)
      })
    )
  })

  describe("routing", () => {
    it("selectTopK picks the k largest (ties to the lower index) and renormalises the gates", () => {
      const probs = [0.1, 0.4, 0.1, 0.4, 0.25, 0.25, 0.25, 0.25]
      const r = selectTopK(probs, 2, 4, 2)
      expect(Array.from(r.experts)).toEqual([1, 3, 0, 1])
      expect(Array.from(r.gates)).toEqual([0.5, 0.5, 0.5, 0.5])
      expect(Array.from(r.mask)).toEqual([0, 1, 0, 1, 1, 1, 0, 0])
      const s = selectTopK([0.7, 0.2, 0.1], 1, 3, 2)
      expect(Array.from(s.experts)).toEqual([0, 1])
      expect(s.gates[0]! + s.gates[1]!).toBeCloseTo(1, 12)
      expect(s.gates[0]! / s.gates[1]!).toBeCloseTo(3.5, 12)
    })

    it.effect("every token gets topK distinct experts per layer, gates in (0, 1] summing to 1, reported as blocks", () =>
      Effect.gen(function* () {
        const w = randomWeights(tinySpec, 9)
        const out = yield* forward(graphs, w, { batch: 2, seq: 8, tokens: Array.from({ length: 16 }, (_, i) => i * 13) })
        const r = out.routing
        expect([r.layers, r.tokens, r.topK]).toEqual([tinySpec.layers, 16, tinySpec.topK])
        for (let l = 0; l < r.layers; l++) {
          for (let t = 0; t < r.tokens; t++) {
            const route = routeOf(r, l, t)
            expect(new Set(route.map((x) => x.expert)).size).toBe(tinySpec.topK)
            expect(route.every((x) => x.gate > 0 && x.gate <= 1 && x.expert >= 0 && x.expert < tinySpec.experts)).toBe(true)
            expect(route.reduce((a, x) => a + x.gate, 0)).toBeCloseTo(1, 5)
            expect(route[0]!.gate).toBeGreaterThanOrEqual(route[1]!.gate)
          }
        }
        const used = expertsUsed(r)
        expect(used.length).toBeGreaterThan(0)
        expect(used.every((n) => /^layer[01]\.expert[0-3]$/.test(n))).toBe(true)
      })
    )
  })

  describe("bad input is refused with a typed error", () => {
    const w = initWeights(tinySpec)
    const cases: Array<[string, { batch: number; seq: number; tokens: number[] }, RegExp]> = [
      ["a token out of range", { batch: 1, seq: 2, tokens: [1, 256] }, /token 256/],
      ["a non-integer token", { batch: 1, seq: 2, tokens: [1, 2.5] }, /token 2.5/],
      ["a sequence longer than the context", { batch: 1, seq: 9, tokens: Array(9).fill(1) }, /exceeds the context/],
      ["a token count that does not fit the shape", { batch: 2, seq: 2, tokens: [1, 2, 3] }, /3 tokens/],
      ["an empty batch", { batch: 0, seq: 2, tokens: [] }, /batch 0/]
    ]
    for (const [what, batch, msg] of cases) {
      it.effect(what, () =>
        Effect.gen(function* () {
          const r = yield* Effect.either(forward(graphs, w, batch))
          expect(Either.isLeft(r)).toBe(true)
          if (Either.isLeft(r)) {
            expect(r.left._tag).toBe("InvalidModelInput")
            expect(r.left.message).toMatch(msg)
          }
        })
      )
    }

    it.effect("weights that do not fit the spec", () =>
      Effect.gen(function* () {
        const parts = new Map(w.parts)
        parts.delete("layer1.expert2")
        const r = yield* Effect.either(forward(graphs, { spec: tinySpec, parts: new Map([...parts, ["layer1.expert2", { name: "layer1.expert2", tensors: {} }]]) }, { batch: 1, seq: 1, tokens: [1] }))
        expect(Either.isLeft(r) && r.left.message).toMatch(/layer1.expert2: missing tensor w1/)
      })
    )
  })
})
