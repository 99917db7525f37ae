import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { MAX_SCHEDULE_OPS, oneFOneB, simulate, stageOps, warmupCount, type Schedule } from "../../../domain/pipeline/schedule.ts"

const sizes: Array<[number, number]> = []
for (let p = 1; p <= 8; p++) for (let m = 1; m <= 32; m++) sizes.push([p, m])

const build = (p: number, m: number): Schedule => Either.getOrThrow(oneFOneB(p, m))

describe("1F1B schedule, for every p ≤ 8 and m ≤ 32", () => {
  it("each stage runs exactly m forwards and m backwards, each microbatch once, F before its B", () => {
    for (const [p, m] of sizes) {
      build(p, m).forEach((ops) => {
        expect(ops.length).toBe(2 * m)
        for (let mb = 0; mb < m; mb++) {
          const f = ops.findIndex((o) => o.op === "F" && o.mb === mb)
          const b = ops.findIndex((o) => o.op === "B" && o.mb === mb)
          expect(f).toBeGreaterThanOrEqual(0)
          expect(b).toBeGreaterThan(f)
          expect(ops.filter((o) => o.mb === mb).length).toBe(2)
        }
      })
    }
  })

  it("starts with min(p−s−1, m) warm-up forwards, then alternates, then cools down with backwards", () => {
    for (const [p, m] of sizes) {
      build(p, m).forEach((ops, s) => {
        const w = Math.min(p - s - 1, m)
        expect(warmupCount(s, p, m)).toBe(w)
        const firstB = ops.findIndex((o) => o.op === "B")
        expect(firstB).toBe(w + 1 <= m ? w + 1 : m) // w forwards, then one steady forward (if any left) before the first B
        // steady state: F, B, F, B ... for m − w pairs
        const steady = ops.slice(w, w + 2 * (m - w))
        steady.forEach((o, i) => expect(o.op).toBe(i % 2 === 0 ? "F" : "B"))
        // cool-down: the last w ops are all backwards
        ops.slice(ops.length - w).forEach((o) => expect(o.op).toBe("B"))
      })
    }
  })

  it("never has more than p−s microbatches in flight at stage s", () => {
    for (const [p, m] of sizes) {
      build(p, m).forEach((ops, s) => {
        let inFlight = 0
        let peak = 0
        for (const o of ops) {
          inFlight += o.op === "F" ? 1 : -1
          peak = Math.max(peak, inFlight)
          expect(inFlight).toBeGreaterThanOrEqual(0)
        }
        expect(peak).toBeLessThanOrEqual(p - s)
        expect(peak).toBe(Math.min(p - s, m))
      })
    }
  })

  it("runs in dependency order: F of mb on s after F on s−1; B of mb on s after B on s+1 and its own F", () => {
    for (const [p, m] of sizes) {
      const sim = Either.getOrThrow(simulate(build(p, m), 1, 2))
      const at = (s: number, op: "F" | "B", mb: number) => sim.timeline[s]!.find((t) => t.op === op && t.mb === mb)!
      for (let s = 0; s < p; s++)
        for (let mb = 0; mb < m; mb++) {
          if (s > 0) expect(at(s, "F", mb).start).toBeGreaterThanOrEqual(at(s - 1, "F", mb).end)
          if (s < p - 1) expect(at(s, "B", mb).start).toBeGreaterThanOrEqual(at(s + 1, "B", mb).end)
          expect(at(s, "B", mb).start).toBeGreaterThanOrEqual(at(s, "F", mb).end)
        }
    }
  })

  it("with uniform forward f and backward b it finishes in exactly (m+p−1)(f+b)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 }), (p, m, f, b) => {
        expect(Either.getOrThrow(simulate(build(p, m), f, b)).makespan).toBe((m + p - 1) * (f + b))
      }),
      { numRuns: 2000 }
    )
    // and on every size exhaustively, for one pair of unequal times
    for (const [p, m] of sizes) expect(Either.getOrThrow(simulate(build(p, m), 3, 5)).makespan).toBe((m + p - 1) * 8)
  })
})

describe("simulator", () => {
  it("lets a slow stage set the pace: per-stage durations", () => {
    const sched = build(2, 4)
    // stage 1 is twice as slow; its 4 F and 4 B (2 + 4 each) dominate after stage 0's first F
    const sim = Either.getOrThrow(simulate(sched, [1, 2], [2, 4]))
    expect(sim.makespan).toBeGreaterThan(4 * (2 + 4))
    expect(sim.makespan).toBeLessThanOrEqual(1 + 4 * (2 + 4) + 2)
  })

  it("reports a deadlock instead of hanging", () => {
    // stage 0 waits for B0 from stage 1 before stage 1 ever receives F0
    const bad: Schedule = [
      [{ op: "B", mb: 0 }, { op: "F", mb: 0 }],
      [{ op: "F", mb: 0 }, { op: "B", mb: 0 }]
    ]
    expect(Either.getLeft(simulate(bad, 1, 1)).pipe((e) => (e._tag === "Some" ? e.value.message : ""))).toMatch(/deadlock: stage 0 at B0, stage 1 at F0/)
  })

  it("refuses bad arguments", () => {
    expect(Either.isLeft(oneFOneB(0, 4))).toBe(true)
    expect(Either.isLeft(oneFOneB(2, 0))).toBe(true)
    expect(Either.isLeft(oneFOneB(1.5, 2))).toBe(true)
    expect(Either.isLeft(simulate(build(2, 2), -1, 1))).toBe(true)
    expect(Either.isLeft(simulate(build(2, 2), [1], 1))).toBe(true)
    expect(Either.isLeft(simulate([[{ op: "F", mb: 0 }, { op: "F", mb: 0 }]], 1, 1))).toBe(true)
  })

  it("a single stage is plain F/B alternation", () => {
    expect(stageOps(0, 1, 2)).toEqual([
      { op: "F", mb: 0 },
      { op: "B", mb: 0 },
      { op: "F", mb: 1 },
      { op: "B", mb: 1 }
    ])
  })
})

describe("simulation of very many stages", () => {
  it("reports the makespan of 200,000 stages without spreading them into Math.max", () => {
    const empty: Schedule = Array.from({ length: 200_000 }, () => [])
    expect(Either.getOrThrow(simulate(empty, 1, 1)).makespan).toBe(0)
  })
})

describe("schedule size", () => {
  const refusal = (p: number, m: number) => Either.match(oneFOneB(p, m), { onLeft: (e) => `${e._tag}: ${e.message}`, onRight: () => "built" })

  it(`refuses more than ${MAX_SCHEDULE_OPS} ops (stages × microbatches × 2) before building any`, () => {
    expect(refusal(100_000, 100_000)).toBe(
      `InvalidSchedule: invalid schedule: 100000 stages × 100000 microbatches × 2 = 20000000000 ops, more than the ${MAX_SCHEDULE_OPS} a schedule may have`
    )
    expect(refusal(2_000, 501)).toMatch(/2004000 ops, more than/)
    expect(refusal(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).toMatch(/ops, more than/)
  })

  it("builds a schedule of exactly the limit, and still refuses counts below 1 first", () => {
    const ops = Either.getOrThrow(oneFOneB(1_000, MAX_SCHEDULE_OPS / 2_000))
    expect(ops.reduce((n, s) => n + s.length, 0)).toBe(MAX_SCHEDULE_OPS)
    expect(refusal(0, 10 ** 12)).toMatch(/stages must be an integer ≥ 1, got 0/)
    expect(refusal(10 ** 12, 0)).toMatch(/microbatches must be an integer ≥ 1, got 0/)
  })
})
