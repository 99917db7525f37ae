import { createHash } from "node:crypto"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { initPart, initWeights } from "../../../domain/model/init.ts"
import { decodePart, encodePart } from "../../../domain/model/safetensors.ts"
import { defaultSpec, partNames } from "../../../domain/model/spec.ts"
import { assembleWeights, partLayout, validatePart } from "../../../domain/model/tensor.ts"
import type { ModelWeights } from "../../../domain/model/tensor.ts"
import { tinySpec } from "./support.ts"

const digest = (w: ModelWeights) => {
  const h = createHash("sha256")
  for (const n of partNames(w.spec)) h.update(encodePart(w.parts.get(n)!))
  return h.digest("hex")
}

describe("genesis weights", () => {
  it("same seed: byte-identical block payloads (pinned for the default spec)", () => {
    const a = initWeights(defaultSpec)
    const b = initWeights({ ...defaultSpec })
    for (const n of partNames(defaultSpec)) expect(Buffer.from(encodePart(a.parts.get(n)!)).equals(Buffer.from(encodePart(b.parts.get(n)!))), n).toBe(true)
    // A change here changes every installation's genesis blocks: it must be deliberate.
    expect(digest(a)).toBe(GENESIS_DIGEST)
  })

  it("another seed changes every part", () => {
    const a = initWeights(tinySpec)
    const b = initWeights({ ...tinySpec, seed: tinySpec.seed + 1 })
    for (const n of partNames(tinySpec)) expect(Buffer.from(encodePart(a.parts.get(n)!)).equals(Buffer.from(encodePart(b.parts.get(n)!))), n).toBe(false)
  })

  it("each part is drawn from its own stream: it does not depend on how many other parts there are", () => {
    expect(initPart({ ...tinySpec, experts: 8 }, "layer1.expert2").tensors.w1).toEqual(initPart(tinySpec, "layer1.expert2").tensors.w1)
    expect(initPart(tinySpec, "layer1.expert2")).toEqual(initWeights(tinySpec).parts.get("layer1.expert2"))
  })

  it("fits its layout, with unit norm gains, zero biases and bounded weights", () => {
    const w = initWeights(defaultSpec)
    expect([...w.parts.keys()]).toEqual(partNames(defaultSpec))
    for (const p of w.parts.values()) {
      expect(Either.isRight(validatePart(defaultSpec, p)), p.name).toBe(true)
      for (const [n, t] of Object.entries(p.tensors)) {
        if (n === "ln.weight") expect(t.data.every((x) => x === 1)).toBe(true)
        else if (n === "ln.bias" || n === "b1" || n === "b2") expect(t.data.every((x) => x === 0)).toBe(true)
        else {
          const bound = n === "tok" || n === "pos" ? 0.02 * Math.sqrt(3) : 1 / Math.sqrt(t.shape[0]!)
          expect(t.data.every((x) => Math.abs(x) <= bound)).toBe(true)
          expect(new Set(t.data).size).toBeGreaterThan(t.data.length / 2)
        }
      }
    }
    expect(partLayout(defaultSpec, "layer4.expert0")).toBeUndefined()
    expect(partLayout(defaultSpec, "layer0.expert8")).toBeUndefined()
  })

  it("an f16 model's weights are exactly representable: payloads decode to the same values", () => {
    const spec = { ...tinySpec, dtype: "f16" as const }
    const w = initWeights(spec)
    for (const p of w.parts.values()) {
      const back = Either.getOrThrow(decodePart(encodePart(p)))
      for (const [n, t] of Object.entries(p.tensors)) {
        expect(t.dtype).toBe("f16")
        expect(Array.from(back.tensors[n]!.data)).toEqual(Array.from(t.data))
      }
    }
  })

  it("assembles from decoded block payloads, and refuses missing, extra or misshapen parts", () => {
    const w = initWeights(tinySpec)
    const decoded = [...w.parts.values()].map((p) => Either.getOrThrow(decodePart(encodePart(p))))
    const back = Either.getOrThrow(assembleWeights(tinySpec, decoded))
    expect(back.parts.get("head")).toEqual(w.parts.get("head"))
    const missing = assembleWeights(tinySpec, decoded.slice(1))
    expect(Either.isLeft(missing) && missing.left.message).toMatch(/embedding: missing/)
    const twice = assembleWeights(tinySpec, [...decoded, decoded[0]!])
    expect(Either.isLeft(twice) && twice.left.message).toMatch(/given twice/)
    const alien = assembleWeights(tinySpec, [...decoded, { name: "layer9.router", tensors: {} }])
    expect(Either.isLeft(alien) && alien.left.message).toMatch(/layer9.router: not a part/)
    const head = decoded.at(-1)!
    const bent = { ...head, tensors: { ...head.tensors, w: { ...head.tensors.w!, shape: [256, tinySpec.dModel] } } }
    const wrong = assembleWeights(tinySpec, [...decoded.slice(0, -1), bent])
    expect(Either.isLeft(wrong) && wrong.left.message).toMatch(/head: tensor w has shape \[256,16\], expected \[16,256\]/)
  })
})

const GENESIS_DIGEST = "0b226ca9123c135d8feeeb12ea94419789012df1d0dccd713ba91724ccc9b2fe"
