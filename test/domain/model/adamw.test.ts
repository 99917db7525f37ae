import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { adamwUpdate, defaultAdamW, gradientNorm, initAdamW } from "../../../domain/model/adamw.ts"
import type { AdamWConfig } from "../../../domain/model/adamw.ts"
import { decodePart, encodePart } from "../../../domain/model/safetensors.ts"
import type { ModelWeights, Part } from "../../../domain/model/tensor.ts"

const weights = (): ModelWeights => ({
  spec: undefined as never, // AdamW never reads the spec
  parts: new Map<string, Part>([
    ["a", { name: "a", tensors: { m: { dtype: "f32", shape: [2, 2], data: Float32Array.of(1, -1, 0.5, 2) }, b: { dtype: "f32", shape: [2], data: Float32Array.of(0.25, -0.25) } } }],
    ["b", { name: "b", tensors: { m: { dtype: "f32", shape: [1, 2], data: Float32Array.of(3, 4) } } }]
  ])
})

const cfg: AdamWConfig = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5 }

describe("AdamW", () => {
  it("first step: each weight moves by lr·sign(g), and matrices also decay by lr·wd·w", () => {
    const w = weights()
    const grads = new Map([["a", { m: [0.3, -2, 0, 1e-3], b: [5, -5] }]])
    const r = adamwUpdate(w, grads, initAdamW(), cfg)
    const m = r.weights.parts.get("a")!.tensors.m!.data
    const expected = [1 - 0.05 - 0.1, -1 + 0.05 + 0.1, 0.5 - 0.025, 2 - 0.1 - 0.1]
    expected.forEach((e, i) => expect(m[i]).toBeCloseTo(e, 5))
    // Biases (rank 1) are not decayed.
    expect(Array.from(r.weights.parts.get("a")!.tensors.b!.data).map((x) => +x.toFixed(5))).toEqual([0.15, -0.15])
    expect(r.gradNorm).toBeCloseTo(Math.sqrt(0.09 + 4 + 1e-6 + 50), 6)
  })

  it("is pure: inputs are untouched, parts without gradients are shared and get no moments", () => {
    const w = weights()
    const before = Array.from(w.parts.get("a")!.tensors.m!.data)
    const r = adamwUpdate(w, new Map([["a", { m: [1, 1, 1, 1] }]]), initAdamW(), cfg)
    expect(Array.from(w.parts.get("a")!.tensors.m!.data)).toEqual(before)
    expect(r.weights.parts.get("b")).toBe(w.parts.get("b"))
    expect(r.weights.parts.get("a")!.tensors.b).toBe(w.parts.get("a")!.tensors.b)
    expect([...r.state.moments.keys()]).toEqual(["a/m"])
    expect(r.state.moments.get("a/m")!.t).toBe(1)
  })

  it("clips the global gradient norm before the moments", () => {
    const grads = new Map([["b", { m: [30, 40] }]])
    expect(gradientNorm(grads)).toBe(50)
    const r = adamwUpdate(weights(), grads, initAdamW(), { ...cfg, maxGradNorm: 5 })
    expect(r.gradNorm).toBe(50)
    const m = r.state.moments.get("b/m")!.m
    expect(m[0]).toBeCloseTo(0.1 * 3, 6)
    expect(m[1]).toBeCloseTo(0.1 * 4, 6)
  })

  it("skips parts that are not trainable", () => {
    const w = weights()
    const r = adamwUpdate(w, new Map([["a", { m: [1, 1, 1, 1] }], ["b", { m: [1, 1] }]]), initAdamW(), cfg, (p) => p === "b")
    expect(r.weights.parts.get("a")).toBe(w.parts.get("a"))
    expect(r.weights.parts.get("b")).not.toBe(w.parts.get("b"))
  })

  it("minimises a quadratic", () => {
    let w = weights()
    let state = initAdamW()
    const target = [0.5, 0.5]
    for (let i = 0; i < 300; i++) {
      const x = w.parts.get("b")!.tensors.m!.data
      const r = adamwUpdate(w, new Map([["b", { m: [2 * (x[0]! - target[0]!), 2 * (x[1]! - target[1]!)] }]]), state, { ...defaultAdamW, lr: 0.05, weightDecay: 0 })
      w = r.weights
      state = r.state
    }
    const x = w.parts.get("b")!.tensors.m!.data
    expect(Math.abs(x[0]! - 0.5)).toBeLessThan(0.02)
    expect(Math.abs(x[1]! - 0.5)).toBeLessThan(0.02)
  })

  it("refuses gradients of the wrong size or for unknown tensors", () => {
    expect(() => adamwUpdate(weights(), new Map([["b", { m: [1] }]]), initAdamW(), cfg)).toThrow(/has 1 values/)
    expect(() => adamwUpdate(weights(), new Map([["b", { q: [1, 2] }]]), initAdamW(), cfg)).toThrow(/unknown tensor b\/q/)
  })
})

describe("AdamW on half-precision tensors", () => {
  it("rounds updated values to the tensor's dtype, so they survive the block payload unchanged", () => {
    const w: ModelWeights = {
      spec: undefined as never,
      parts: new Map<string, Part>([["p", { name: "p", tensors: { m: { dtype: "bf16", shape: [1, 3], data: Float32Array.of(1, 0.5, -0.25) } } }]])
    }
    const r = adamwUpdate(w, new Map([["p", { m: [1, -1, 1] }]]), initAdamW(), { ...cfg, lr: 0.0123 })
    const part = r.weights.parts.get("p")!
    const back = Either.getOrThrow(decodePart(encodePart(part)))
    expect(Array.from(back.tensors.m!.data)).toEqual(Array.from(part.tensors.m!.data))
    expect(part.tensors.m!.data[0]).not.toBe(1)
  })
})
