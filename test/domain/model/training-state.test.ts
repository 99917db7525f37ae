import { Either } from "effect"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { adamwUpdate, defaultAdamW, initAdamW, type Gradients } from "../../../domain/model/adamw.ts"
import { decodeCheckpoint, encodeCheckpoint, type TrainingState } from "../../../domain/model/training-state.ts"
import type { ModelWeights } from "../../../domain/model/tensor.ts"
import { randomWeights, tinySpec } from "./support.ts"

/** Gradients of a seeded pseudo-random size on some parts only: moments for those alone. */
const someGradients = (weights: ModelWeights, seed: number): Gradients => {
  const out = new Map<string, Record<string, Float64Array>>()
  let i = 0
  for (const [name, part] of weights.parts)
    if ((i++ + seed) % 3 !== 0) out.set(name, Object.fromEntries(Object.entries(part.tensors).map(([t, v]) => [t, Float64Array.from(v.data, (x, k) => Math.sin(x * 13 + k + seed))])))
  return out
}

const same = (a: TrainingState, b: TrainingState) => {
  expect(b.step).toBe(a.step)
  expect([...b.weights.parts.keys()].sort()).toEqual([...a.weights.parts.keys()].sort())
  for (const [name, part] of a.weights.parts)
    for (const [t, tensor] of Object.entries(part.tensors)) {
      const other = b.weights.parts.get(name)!.tensors[t]!
      expect(other.dtype).toBe(tensor.dtype)
      expect(Buffer.from(other.data.buffer, other.data.byteOffset, other.data.byteLength).equals(Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength))).toBe(true)
    }
  expect([...b.state.moments.keys()].sort()).toEqual([...a.state.moments.keys()].sort())
  for (const [k, m] of a.state.moments) {
    const o = b.state.moments.get(k)!
    expect(o.t).toBe(m.t)
    expect(Array.from(o.m)).toEqual(Array.from(m.m))
    expect(Array.from(o.v)).toEqual(Array.from(m.v))
  }
}

describe("a training run's state as a checkpoint blob", () => {
  it("decodes to exactly the weights, moments, their step counts and the step it was written at (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 3 }), fc.nat(10_000), (seed, updates, step) => {
        let weights = randomWeights(tinySpec, seed)
        let state = initAdamW()
        for (let u = 0; u < updates; u++) ({ weights, state } = adamwUpdate(weights, someGradients(weights, seed + u), state, defaultAdamW))
        const written: TrainingState = { step, weights, state }
        const read = decodeCheckpoint(tinySpec, encodeCheckpoint(written))
        expect(Either.isRight(read)).toBe(true)
        same(written, Either.getOrThrow(read))
      }),
      { numRuns: 15 }
    )
  })

  it("refuses bytes that are not a checkpoint of this model, naming why", () => {
    const bytes = encodeCheckpoint({ step: 3, weights: randomWeights(tinySpec, 1), state: initAdamW() })
    const why = (b: Uint8Array, spec = tinySpec) => Either.match(decodeCheckpoint(spec, b), { onLeft: (e) => e.message, onRight: () => "read" })
    expect(why(bytes.subarray(0, 40))).toMatch(/^not a checkpoint of this model: /)
    expect(why(bytes, { ...tinySpec, dModel: 8 })).toMatch(/^not a checkpoint of this model: /)
    expect(why(bytes, { ...tinySpec, layers: 3 })).toMatch(/^not a checkpoint of this model: /)
  })
})
