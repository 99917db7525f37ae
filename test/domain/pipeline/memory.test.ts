import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import {
  decideMemory,
  inFlight,
  moeStageMemory,
  stageBytes,
  type MemoryPolicyInput,
  type StageMemoryInput
} from "../../../domain/pipeline/memory.ts"
import { moeLayerParams } from "../../../domain/pipeline/cost.ts"
import type { ModelSpec } from "../../../domain/model/spec.ts"

// 1000 params: weights + grads 8000 B, AdamW 8000 B; one microbatch 1000 B, checkpointed 100 B, recompute 1000 B
const stage = (deviceMemory: number): StageMemoryInput => ({ params: 1000, activationBytes: 1000, checkpointBytes: 100, recomputeBytes: 1000, deviceMemory })

/** given(stages on devices) · when(deciding for m microbatches and dp replicas) · then(decision or error) */
const given = (...devices: number[]) => ({
  when: (microbatches: number, dataParallel = 1) => {
    const input: MemoryPolicyInput = { stages: devices.map(stage), microbatches, dataParallel }
    return decideMemory(input)
  }
})
const settingsOf = (r: ReturnType<typeof decideMemory>) =>
  Either.getOrThrow(r).stages.map((s) => ({ zero1: s.zero1, actCkpt: s.actCkpt, bytes: s.bytes }))

describe("memory policy (given stages on devices, when deciding, then per-stage settings)", () => {
  it("given ample memory, then neither ZeRO-1 nor checkpointing; stage 0 holds 2 microbatches of a 2-stage pipeline", () => {
    const d = Either.getOrThrow(given(1e9, 1e9).when(4))
    expect(d.stages.map((s) => s.inFlight)).toEqual([2, 1])
    expect(settingsOf(given(1e9, 1e9).when(4))).toEqual([
      { zero1: false, actCkpt: false, bytes: 18000 },
      { zero1: false, actCkpt: false, bytes: 17000 }
    ])
    expect(d.zero1).toBe(false)
    expect(d.actCkpt).toBe(false)
  })

  it("given no replicas and a tight first stage, then only that stage checkpoints", () => {
    const r = given(17500, 17500).when(4)
    expect(settingsOf(r)).toEqual([
      { zero1: false, actCkpt: true, bytes: 17200 },
      { zero1: false, actCkpt: false, bytes: 17000 }
    ])
    expect(Either.getOrThrow(r).actCkpt).toBe(true)
  })

  it("given 4 replicas, when either setting alone would fit, then ZeRO-1 is preferred to checkpointing", () => {
    expect(settingsOf(given(17500, 1e9).when(4, 4))[0]).toEqual({ zero1: true, actCkpt: false, bytes: 12000 })
  })

  it("given 4 replicas and very little memory, then both", () => {
    expect(settingsOf(given(11500, 1e9).when(4, 4))[0]).toEqual({ zero1: true, actCkpt: true, bytes: 11200 })
  })

  it("given stages that cannot fit at all, then an error naming each with what it needs and has", () => {
    const r = given(11000, 10900).when(4, 4)
    const e = Either.getLeft(r)
    expect(e._tag).toBe("Some")
    if (e._tag === "Some") {
      expect(e.value._tag).toBe("MemoryDoesNotFit")
      if (e.value._tag === "MemoryDoesNotFit") {
        expect(e.value.stages).toEqual([
          { stage: 0, needs: 11200, has: 11000 },
          { stage: 1, needs: 11000, has: 10900 }
        ])
        expect(e.value.message).toMatch(/stage 0 needs at least 11200 bytes .* has 11000; stage 1 needs at least 11000 .* has 10900/)
      }
    }
  })

  it("given no replicas, then ZeRO-1 is never chosen, however tight", () => {
    expect(Either.getLeft(given(15000).when(1)).pipe((e) => e._tag)).toBe("Some")
  })

  it("given bad input, then a typed error and no decision", () => {
    const tag = (i: MemoryPolicyInput) => Either.getLeft(decideMemory(i)).pipe((e) => (e._tag === "Some" ? e.value._tag : "ok"))
    expect(tag({ stages: [], microbatches: 1 })).toBe("InvalidMemoryInput")
    expect(tag({ stages: [stage(1)], microbatches: 0 })).toBe("InvalidMemoryInput")
    expect(tag({ stages: [stage(1)], microbatches: 1, dataParallel: 0 })).toBe("InvalidMemoryInput")
    expect(tag({ stages: [{ ...stage(1), params: -1 }], microbatches: 1 })).toBe("InvalidMemoryInput")
    expect(tag({ stages: [{ ...stage(1), deviceMemory: Number.NaN }], microbatches: 1 })).toBe("InvalidMemoryInput")
  })

  it("counts at most min(p−s, m) microbatches in flight, so earlier stages never need less (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 64 }), fc.boolean(), (p, m, ckpt) => {
        const st = stage(0)
        let last = Number.POSITIVE_INFINITY
        for (let s = 0; s < p; s++) {
          expect(inFlight(s, p, m)).toBe(Math.min(p - s, m))
          const b = stageBytes(st, inFlight(s, p, m), { zero1: false, actCkpt: ckpt })
          expect(b).toBeLessThanOrEqual(last)
          last = b
        }
      })
    )
  })

  it("chooses a setting that fits and no preferred setting that also fits (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 30000 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        (mems, m, dp) => {
          const r = given(...mems).when(m, dp)
          if (Either.isLeft(r)) return
          for (const d of r.right.stages) {
            const st = stage(mems[d.stage]!)
            expect(d.bytes).toBeLessThanOrEqual(st.deviceMemory)
            const cheaper = [
              { zero1: false, actCkpt: false },
              ...(dp > 1 ? [{ zero1: true, actCkpt: false }] : []),
              { zero1: false, actCkpt: true }
            ]
            const mine = cheaper.findIndex((c) => c.zero1 === d.zero1 && c.actCkpt === d.actCkpt)
            for (const c of cheaper.slice(0, mine === -1 ? cheaper.length : mine))
              expect(stageBytes(st, d.inFlight, c, { dataParallel: dp })).toBeGreaterThan(st.deviceMemory)
          }
        }
      )
    )
  })
})

describe("blyan-moe stage memory", () => {
  const spec: ModelSpec = { family: "blyan-moe", name: "tiny", vocab: 256, context: 64, dModel: 8, heads: 2, layers: 4, experts: 4, topK: 2, dFF: 16, seed: 1, dtype: "f32" }
  it("holds every expert's weights and a layer input per token when checkpointed", () => {
    const m = moeStageMemory(spec, 2, 10, 1e9)
    expect(m.params).toBe(2 * moeLayerParams(spec))
    expect(m.params).toBe(2 * (4 * 64 + 8 * 4 + 4 * 2 * 8 * 16))
    expect(m.checkpointBytes).toBe(2 * 8 * 4 * 10)
    // 6d + E + topK·2·dFF elements per token, f32
    expect(m.activationBytes).toBe(2 * 4 * (48 + 4 + 64) * 10)
    expect(m.recomputeBytes).toBe(m.activationBytes / 2)
  })
})
