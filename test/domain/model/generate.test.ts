import { Effect, Either } from "effect"
import fc from "fast-check"
import { describe, expect, it, layer } from "@effect/vitest"
import { emptyKvCache, forward, forwardStep, routeOf, type KvCache } from "../../../domain/model/forward.ts"
import { generate, sampleToken } from "../../../domain/model/generate.ts"
import { buildModelGraphs } from "../../../domain/model/onnx/graphs.ts"
import { makePrng } from "../../../domain/model/prng.ts"
import { randomWeights, TestExecutor, tinySpec } from "./support.ts"

const graphs = buildModelGraphs(tinySpec)
const weights = randomWeights(tinySpec, 5, 0.6)
const prompt = new TextEncoder().encode("ledger")

layer(TestExecutor)("generate", (it) => {
  it.effect("greedy decoding extends the prompt with the argmax of the last position, reporting the experts per layer", () =>
    Effect.gen(function* () {
      const r = yield* generate(graphs, weights, prompt, { maxTokens: 3, temperature: 0, seed: 0 })
      expect(r.tokens.length).toBe(3)
      const f = yield* forward(graphs, weights, { batch: 1, seq: prompt.length, tokens: [...prompt] })
      const last = f.logits.subarray((prompt.length - 1) * 256, prompt.length * 256)
      expect(r.tokens[0]).toBe(last.indexOf(Math.max(...last)))
      for (const s of r.steps) {
        expect(s.experts.length).toBe(tinySpec.layers)
        for (const layer of s.experts) expect(layer.length).toBe(tinySpec.topK)
      }
    })
  )

  it.effect("slides over the context window when the text grows past it", () =>
    Effect.gen(function* () {
      const long = new TextEncoder().encode("a prompt longer than the context")
      const r = yield* generate(graphs, weights, long, { maxTokens: 2, temperature: 0, seed: 0 })
      const again = yield* generate(graphs, weights, long.subarray(long.length - tinySpec.context), { maxTokens: 2, temperature: 0, seed: 0 })
      expect(Array.from(r.tokens)).toEqual(Array.from(again.tokens))
    })
  )

  it.effect("sampling is reproducible from the seed", () =>
    Effect.gen(function* () {
      const opts = { maxTokens: 12, temperature: 1.5, seed: 42 }
      const a = yield* generate(graphs, weights, prompt, opts)
      const b = yield* generate(graphs, weights, prompt, opts)
      const c = yield* generate(graphs, weights, prompt, { ...opts, seed: 43 })
      expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens))
      expect(Array.from(a.tokens)).not.toEqual(Array.from(c.tokens))
    })
  )

  it.effect("stops after the stop byte", () =>
    Effect.gen(function* () {
      const first = (yield* generate(graphs, weights, prompt, { maxTokens: 1, temperature: 0, seed: 0 })).tokens[0]!
      const r = yield* generate(graphs, weights, prompt, { maxTokens: 5, temperature: 0, seed: 0, stopByte: first })
      expect(Array.from(r.tokens)).toEqual([first])
    })
  )

  it.effect("decoding with the key/value cache, in chunks of any size, gives the full pass's logits and routing for every position (property)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: tinySpec.context }),
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: tinySpec.context }),
          async (tokens, chunks) => {
            const full = await Effect.runPromise(Effect.provide(forward(graphs, weights, { batch: 1, seq: tokens.length, tokens }), TestExecutor))
            let cache: KvCache = emptyKvCache(graphs)
            for (let k = 0; cache.positions < tokens.length; k++) {
              const from = cache.positions
              const part = tokens.slice(from, from + chunks[k % chunks.length]!)
              const step = await Effect.runPromise(Effect.provide(forwardStep(graphs, weights, cache, part), TestExecutor))
              for (let i = 0; i < part.length * 256; i++) expect(step.logits[i]!).toBeCloseTo(full.logits[from * 256 + i]!, 4)
              for (let l = 0; l < tinySpec.layers; l++)
                for (let t = 0; t < part.length; t++)
                  expect(routeOf(step.routing, l, t).map((e) => e.expert)).toEqual(routeOf(full.routing, l, from + t).map((e) => e.expert))
              cache = step.cache
            }
          }
        ),
        { numRuns: 25 }
      )
    )
  )

  it.effect("with the cache, generation gives the tokens and experts of recomputing the window every step, past the context too", () =>
    Effect.gen(function* () {
      for (const opts of [
        { maxTokens: 12, temperature: 0, seed: 0 },
        { maxTokens: 12, temperature: 1.2, seed: 9, topK: 20 }
      ]) {
        const cached = yield* generate(graphs, weights, prompt.subarray(0, 3), opts)
        const recomputed = yield* generate(graphs, weights, prompt.subarray(0, 3), { ...opts, kvCache: false })
        expect(Array.from(cached.tokens)).toEqual(Array.from(recomputed.tokens))
        expect(cached.steps.map((s) => s.experts.map((l) => l.map((e) => e.expert)))).toEqual(
          recomputed.steps.map((s) => s.experts.map((l) => l.map((e) => e.expert)))
        )
      }
    })
  )

  it.effect("a decoding step past the context is refused, naming the positions", () =>
    Effect.gen(function* () {
      const full = yield* forwardStep(graphs, weights, emptyKvCache(graphs), Array.from({ length: tinySpec.context }, (_, i) => i))
      const r = yield* Effect.either(forwardStep(graphs, weights, full.cache, [1]))
      expect(Either.isLeft(r) && r.left.message).toContain(`${tinySpec.context} cached and 1 new positions exceed the context of ${tinySpec.context}`)
    })
  )

  it.effect("refuses an empty prompt", () =>
    Effect.gen(function* () {
      const r = yield* Effect.either(generate(graphs, weights, new Uint8Array(0), { maxTokens: 1, temperature: 0, seed: 0 }))
      expect(Either.isLeft(r) && r.left._tag).toBe("InvalidModelInput")
    })
  )
})

describe("sampleToken", () => {
  it("temperature 0 and top-1 are the argmax; otherwise it follows the softmax", () => {
    const logits = [0, Math.log(3), -Infinity, 0]
    const rng = makePrng(1)
    expect(sampleToken(logits, 0, rng)).toBe(1)
    expect(sampleToken(logits, 5, rng, 1)).toBe(1)
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 5000; i++) counts[sampleToken(logits, 1, rng)]!++
    expect(counts[2]).toBe(0)
    // p = [0.2, 0.6, 0, 0.2]
    expect(counts[1]! / 5000).toBeGreaterThan(0.55)
    expect(counts[1]! / 5000).toBeLessThan(0.65)
  })
})
