import { Effect, Either } from "effect"
import { expect, layer } from "@effect/vitest"
import { generateFamily } from "../../../../domain/model/families/generate.ts"
import { buildFamilyGraphs } from "../../../../domain/model/onnx/families.ts"
import { referenceSession } from "../../../support/family-reference.ts"
import { familyWeights, tinyMixtral, tinyQwen3Moe } from "../../../support/family-weights.ts"
import { TestExecutor } from "../support.ts"

const prompt = [5, 17, 3, 40, 22]

/** The reference's greedy continuation of `tokens`: argmax after each token fed, with the experts of each chosen position. */
const referenceGreedy = (spec: typeof tinyMixtral, weights: ReturnType<typeof familyWeights>, tokens: ReadonlyArray<number>, n: number) => {
  const s = referenceSession(spec, weights)
  let out = tokens.map((t) => s.step(t)).at(-1)!
  const generated: Array<{ token: number; experts: number[][] }> = []
  for (let i = 0; i < n; i++) {
    let best = 0
    for (let v = 1; v < out.logits.length; v++) if (out.logits[v]! > out.logits[best]!) best = v
    generated.push({ token: best, experts: out.routing.map((r) => r.experts) })
    out = s.step(best)
  }
  return generated
}

layer(TestExecutor)("generation with an open MoE model", (it) => {
  for (const spec of [tinyMixtral, tinyQwen3Moe])
    it.effect(`${spec.family}: greedy tokens and each token's experts are the float64 reference's`, () =>
      Effect.gen(function* () {
        const weights = familyWeights(spec, 3)
        const r = yield* generateFamily(spec, buildFamilyGraphs(spec), weights, prompt, { maxTokens: 8, temperature: 0, seed: 1 })
        const expected = referenceGreedy(spec, weights, prompt, 8)
        expect(r.tokens).toEqual(expected.map((e) => e.token))
        expect(r.steps.map((s) => s.experts.map((l) => l.map((e) => e.expert)))).toEqual(expected.map((e) => e.experts))
      })
    )

  it.effect("sampling is the seed's: the same seed the same tokens, a stop token ends it, and it ends at the context", () =>
    Effect.gen(function* () {
      const spec = tinyQwen3Moe
      const [graphs, weights] = [buildFamilyGraphs(spec), familyWeights(spec, 4)]
      const run = (seed: number, more: object = {}) => generateFamily(spec, graphs, weights, prompt, { maxTokens: 12, temperature: 1, seed, ...more })
      const [a, b, c] = [yield* run(9), yield* run(9), yield* run(10)]
      expect(a.tokens).toEqual(b.tokens)
      expect(a.tokens).not.toEqual(c.tokens)
      const stopped = yield* run(9, { stopTokens: new Set([a.tokens[3]!]) })
      expect(stopped.tokens).toEqual(a.tokens.slice(0, a.tokens.indexOf(a.tokens[3]!) + 1))
      const long = yield* run(9, { maxTokens: 1000 })
      expect(long.tokens.length).toBe(spec.context - prompt.length + 1)
    })
  )

  it.effect("refuses an empty prompt or one longer than the context", () =>
    Effect.gen(function* () {
      const spec = tinyMixtral
      const run = (p: ReadonlyArray<number>) => Effect.either(generateFamily(spec, buildFamilyGraphs(spec), familyWeights(spec, 1), p, { maxTokens: 2, temperature: 0, seed: 1 }))
      const empty = yield* run([])
      expect(Either.isLeft(empty) && empty.left.message).toBe("invalid model input: the prompt is empty")
      const long = yield* run(Array.from({ length: spec.context + 1 }, () => 1))
      expect(Either.isLeft(long) && long.left.message).toBe(`invalid model input: the prompt's ${spec.context + 1} tokens exceed the model's context of ${spec.context}`)
    })
  )
})
