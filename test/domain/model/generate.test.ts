import { Effect, Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { forward } from "../../../domain/model/forward.ts"
import { generate, sampleToken } from "../../../domain/model/generate.ts"
import { buildModelGraphs } from "../../../domain/model/onnx/graphs.ts"
import { makePrng } from "../../../domain/model/prng.ts"
import { makeRuntime, randomWeights, tinySpec } from "./support.ts"

const rt = makeRuntime()
afterAll(() => rt.dispose())
const graphs = buildModelGraphs(tinySpec)
const weights = randomWeights(tinySpec, 5, 0.6)
const prompt = new TextEncoder().encode("ledger")

describe("generate", () => {
  it("greedy decoding extends the prompt with the argmax of the last position, reporting the experts per layer", async () => {
    const r = await rt.runPromise(generate(graphs, weights, prompt, { maxTokens: 3, temperature: 0, seed: 0 }))
    expect(r.tokens.length).toBe(3)
    const f = await rt.runPromise(forward(graphs, weights, { batch: 1, seq: prompt.length, tokens: [...prompt] }))
    const last = f.logits.subarray((prompt.length - 1) * 256, prompt.length * 256)
    expect(r.tokens[0]).toBe(last.indexOf(Math.max(...last)))
    for (const s of r.steps) {
      expect(s.experts.length).toBe(tinySpec.layers)
      for (const layer of s.experts) expect(layer.length).toBe(tinySpec.topK)
    }
  })

  it("slides over the context window when the text grows past it", async () => {
    const long = new TextEncoder().encode("a prompt longer than the context")
    const r = await rt.runPromise(generate(graphs, weights, long, { maxTokens: 2, temperature: 0, seed: 0 }))
    const again = await rt.runPromise(generate(graphs, weights, long.subarray(long.length - tinySpec.context), { maxTokens: 2, temperature: 0, seed: 0 }))
    expect(Array.from(r.tokens)).toEqual(Array.from(again.tokens))
  })

  it("sampling is reproducible from the seed", async () => {
    const opts = { maxTokens: 12, temperature: 1.5, seed: 42 }
    const a = await rt.runPromise(generate(graphs, weights, prompt, opts))
    const b = await rt.runPromise(generate(graphs, weights, prompt, opts))
    const c = await rt.runPromise(generate(graphs, weights, prompt, { ...opts, seed: 43 }))
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens))
    expect(Array.from(a.tokens)).not.toEqual(Array.from(c.tokens))
  })

  it("stops after the stop byte", async () => {
    const first = (await rt.runPromise(generate(graphs, weights, prompt, { maxTokens: 1, temperature: 0, seed: 0 }))).tokens[0]!
    const r = await rt.runPromise(generate(graphs, weights, prompt, { maxTokens: 5, temperature: 0, seed: 0, stopByte: first }))
    expect(Array.from(r.tokens)).toEqual([first])
  })

  it("refuses an empty prompt", async () => {
    const r = await rt.runPromise(Effect.either(generate(graphs, weights, new Uint8Array(0), { maxTokens: 1, temperature: 0, seed: 0 })))
    expect(Either.isLeft(r) && r.left._tag).toBe("InvalidModelInput")
  })
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
