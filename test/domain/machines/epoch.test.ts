import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { initialTransition, transition } from "xstate"
import { epochMachine, type EpochMachineEvent, type EpochSnapshot } from "../../../domain/machines/epoch.ts"

const input = { epoch: "e1", rounds: 2 }
const stateOf = (s: EpochSnapshot) => (typeof s.value === "string" ? s.value : Object.entries(s.value).map(([k, v]) => `${k}.${String(v)}`)[0]!)

/** Fold events through the pure transition, from `start` (the initial state by default), with the state after each. */
const fold = (events: ReadonlyArray<EpochMachineEvent>, start?: EpochSnapshot) => {
  let s = start ?? initialTransition(epochMachine, input)[0]
  const states = [stateOf(s)]
  for (const e of events) {
    ;[s] = transition(epochMachine, s, e)
    states.push(stateOf(s))
  }
  return { snapshot: s, states }
}

const started = (round: string): EpochMachineEvent => ({ type: "roundStarted", round })
const completed = (round: string): EpochMachineEvent => ({ type: "roundCompleted", round })

describe("the training epoch machine", () => {
  it("plans, freezes the promoted plan, trains its rounds one after the other, evaluates, and completes when the held-out loss went down", () => {
    const r = fold([{ type: "promoted", planId: "p1" }, { type: "frozen", planId: "p1" }, started("r0"), completed("r0"), started("r1"), completed("r1"), { type: "evaluated", lossBefore: 2.5, lossAfter: 2.4 }])
    expect(r.states).toEqual(["planning", "planning", "frozen", "training.running", "training.boundary", "training.running", "evaluating", "completed"])
    expect(r.snapshot.context.completed).toEqual([{ round: "r0", plan: "p1" }, { round: "r1", plan: "p1" }])
    expect(r.snapshot.status).toBe("done")
  })

  it("freezes only the plan promoted for it; a plan promoted mid-round takes over at the next boundary, never during a round", () => {
    const r = fold([
      { type: "frozen", planId: "p0" },
      { type: "promoted", planId: "p1" },
      { type: "frozen", planId: "p9" },
      { type: "frozen", planId: "p1" },
      started("r0"),
      { type: "promoted", planId: "p2" },
      completed("r0"),
      started("r1"),
      completed("r1")
    ])
    expect(r.states.slice(0, 5)).toEqual(["planning", "planning", "planning", "planning", "frozen"])
    expect(r.snapshot.context.completed).toEqual([{ round: "r0", plan: "p1" }, { round: "r1", plan: "p2" }])
  })

  it("a failed round goes back to the boundary and runs again; a round completed cannot start twice; events about another round change nothing", () => {
    const r = fold([
      { type: "promoted", planId: "p1" },
      { type: "frozen", planId: "p1" },
      started("r0"),
      completed("rX"),
      { type: "roundFailed", round: "r0", reason: "stage 1 lost" },
      started("r0"),
      completed("r0"),
      started("r0")
    ])
    expect(r.states.slice(3)).toEqual(["training.running", "training.running", "training.boundary", "training.running", "training.boundary", "training.boundary"])
    expect(r.snapshot.context.failures).toBe(1)
    expect(r.snapshot.context.completed).toEqual([{ round: "r0", plan: "p1" }])
  })

  it("is rolled back when the evaluation finds no gain, or on an abort from any state before its end; both are final", () => {
    const noGain = fold([{ type: "promoted", planId: "p1" }, { type: "frozen", planId: "p1" }, started("r0"), completed("r0"), started("r1"), completed("r1"), { type: "evaluated", lossBefore: 2.4, lossAfter: 2.4 }])
    expect(noGain.snapshot.value).toBe("rolledBack")
    expect(noGain.snapshot.context.reason).toBe("held-out loss 2.4000 -> 2.4000: no improvement")
    for (const prefix of [[], [{ type: "promoted", planId: "p1" }, { type: "frozen", planId: "p1" }], [{ type: "promoted", planId: "p1" }, { type: "frozen", planId: "p1" }, started("r0")]] as EpochMachineEvent[][]) {
      const aborted = fold([...prefix, { type: "abort", reason: "operator stopped it" }, started("r5")])
      expect(aborted.snapshot.value).toBe("rolledBack")
      expect(aborted.snapshot.context.reason).toBe("operator stopped it")
    }
    expect(fold([...noGain.snapshot.context.completed.map((c) => completed(c.round)), { type: "abort", reason: "late" }], noGain.snapshot).snapshot.context.reason).toBe(noGain.snapshot.context.reason)
  })

  const anyEvent: fc.Arbitrary<EpochMachineEvent> = fc.oneof(
    fc.constantFrom("p1", "p2", "p3").map((planId) => ({ type: "promoted" as const, planId })),
    fc.constantFrom("p1", "p2", "p3").map((planId) => ({ type: "frozen" as const, planId })),
    fc.constantFrom("r0", "r1", "r2").map(started),
    fc.constantFrom("r0", "r1", "r2").map(completed),
    fc.constantFrom("r0", "r1", "r2").map((round) => ({ type: "roundFailed" as const, round, reason: "a stage failed" })),
    fc.tuple(fc.double({ min: 1, max: 3, noNaN: true }), fc.double({ min: 1, max: 3, noNaN: true })).map(([lossBefore, lossAfter]) => ({ type: "evaluated" as const, lossBefore, lossAfter })),
    fc.constant({ type: "abort" as const, reason: "stopped" })
  )

  it("under any events: every round runs on the plan it started on, completes at most once, at most `rounds` complete; and an epoch restored from its persisted state at any point goes on exactly as one never stopped (property)", () =>
    fc.assert(
      fc.property(fc.array(anyEvent, { maxLength: 40 }), fc.nat(), (events, cutAt) => {
        const whole = fold(events)
        let s = initialTransition(epochMachine, input)[0]
        let planAtStart: string | undefined
        for (const e of events) {
          const before = s
          ;[s] = transition(epochMachine, s, e)
          if (before.context.running === undefined && s.context.running !== undefined) planAtStart = s.context.plan
          if (s.context.completed.length > before.context.completed.length) expect(s.context.completed.at(-1)!.plan).toBe(planAtStart)
          if (before.context.running !== undefined && s.context.running !== undefined) expect(s.context.plan).toBe(before.context.plan)
        }
        expect(new Set(s.context.completed.map((c) => c.round)).size).toBe(s.context.completed.length)
        expect(s.context.completed.length).toBeLessThanOrEqual(input.rounds)
        // A restart: the state persisted as JSON at the cut, resolved, then the rest of the events.
        const cut = cutAt % (events.length + 1)
        const persisted = JSON.parse(JSON.stringify(epochMachine.getPersistedSnapshot(fold(events.slice(0, cut)).snapshot))) as Parameters<typeof epochMachine.resolveState>[0]
        const resumed = fold(events.slice(cut), epochMachine.resolveState(persisted))
        expect([resumed.snapshot.value, resumed.snapshot.context]).toEqual([whole.snapshot.value, whole.snapshot.context])
      }),
      { numRuns: 1000 }
    ))
})
