import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { initWeights } from "../../../domain/model/init.ts"
import { decodeSpec, defaultSpec, parameterCounts, parsePartName, partNames, validateSpec } from "../../../domain/model/spec.ts"
import { numel } from "../../../domain/model/tensor.ts"

describe("model spec", () => {
  it("the default spec is valid and decodes from its JSON", () => {
    expect(Either.isRight(validateSpec(defaultSpec))).toBe(true)
    expect(Either.getOrThrow(decodeSpec(JSON.parse(JSON.stringify(defaultSpec))))).toEqual(defaultSpec)
    expect(defaultSpec).toMatchObject({ name: "blyan-moe-tiny", context: 64, dModel: 128, heads: 4, layers: 4, experts: 8, topK: 2, dFF: 256, seed: 1, dtype: "f32" })
  })

  const invalid: Array<[string, object, RegExp]> = [
    ["dModel not divisible by heads", { dModel: 130 }, /not divisible by heads/],
    ["topK above experts", { topK: 9 }, /topK 9 exceeds experts 8/],
    ["a huge dimension", { dFF: 100_000 }, /dFF 100000 exceeds/],
    ["a wrong family", { family: "gpt" }, /family/],
    ["a non-byte vocabulary", { vocab: 512 }, /vocab/],
    ["a zero context", { context: 0 }, /context/],
    ["an unknown dtype", { dtype: "f64" }, /dtype/]
  ]
  for (const [what, patch, msg] of invalid) {
    it(`refuses ${what}`, () => {
      const r = decodeSpec({ ...defaultSpec, ...patch })
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) {
        expect(r.left._tag).toBe("InvalidModelSpec")
        expect(r.left.message).toMatch(msg)
      }
    })
  }

  it("part names: embedding, per layer attention, router and experts, then head; each parses back", () => {
    const names = partNames(defaultSpec)
    expect(names.length).toBe(2 + defaultSpec.layers * (2 + defaultSpec.experts))
    expect(names.slice(0, 4)).toEqual(["embedding", "layer0.attention", "layer0.router", "layer0.expert0"])
    expect(names.at(-1)).toBe("head")
    expect(new Set(names).size).toBe(names.length)
    for (const n of names) expect(parsePartName(n), n).toBeDefined()
    expect(parsePartName("layer1.expert3")).toEqual({ kind: "expert", layer: 1, expert: 3 })
    for (const bad of ["layer01.router", "layer1.expert", "layer.attention", "head2", "layer1.expert-1"]) expect(parsePartName(bad), bad).toBeUndefined()
  })

  it("parameter counts equal the sizes of the initialised tensors", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), (layers, experts, heads) => {
        const spec = { ...defaultSpec, layers, experts, heads, topK: 1, dModel: 8 * heads, dFF: 16, context: 4 }
        const w = initWeights(spec)
        let total = 0
        for (const p of w.parts.values()) for (const t of Object.values(p.tensors)) total += numel(t.shape)
        expect(parameterCounts(spec).total).toBe(total)
      }),
      { numRuns: 10 }
    )
    const c = parameterCounts(defaultSpec)
    expect(c.activePerToken).toBeLessThan(c.total)
  })
})
