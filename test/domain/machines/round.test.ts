import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { initialTransition, transition } from "xstate"
import { roundMachine, type RoundMachineEvent } from "../../../domain/machines/round.ts"

const input = { round: "r1", target: "layer0.expert1", validators: ["v1", "v2", "v3"] }
const submit = (id: string, candidate = `cand-${id}`): RoundMachineEvent => ({ type: "submitted", contribution: { id, candidate, contributor: "alice" } })
const vote = (contribution: string, validator: string, passes: boolean): RoundMachineEvent => ({ type: "evaluated", contribution, validator, passes })

/** Fold events through the pure transition, with the state after each. */
const fold = (events: ReadonlyArray<RoundMachineEvent>) => {
  let [s] = initialTransition(roundMachine, input)
  const states = [String(s.value)]
  for (const e of events) {
    ;[s] = transition(roundMachine, s, e)
    states.push(String(s.value))
  }
  return { snapshot: s, states }
}

describe("the Proof-of-Learning round machine", () => {
  it("opens, collects, evaluates and decides by a two-thirds quorum, then closes once the decision is recorded", () => {
    const r = fold([{ type: "opened" }, submit("c1"), { type: "close" }, vote("c1", "v1", true), vote("c1", "v2", true), { type: "recorded" }])
    expect(r.states).toEqual(["open", "collecting", "collecting", "evaluating", "evaluating", "deciding", "closed"])
    expect(r.snapshot.context.outcomes).toEqual([{ contribution: "c1", accepted: true, reason: "accepted by 2 validators (quorum 2)" }])
    expect(r.snapshot.status).toBe("done")
  })

  it("closes at once when nothing was submitted by the deadline", () => {
    expect(fold([{ type: "opened" }, { type: "deadline" }]).states).toEqual(["open", "collecting", "closed"])
  })

  it("of two contributions the quorum accepts, the earlier wins; a rejected one names its reason", () => {
    const r = fold([
      { type: "opened" },
      submit("c1"),
      submit("c2"),
      submit("c3"),
      { type: "deadline" },
      ...["v1", "v2", "v3"].flatMap((v) => [vote("c2", v, true), vote("c1", v, true), vote("c3", v, false)])
    ])
    expect(r.snapshot.value).toBe("deciding")
    expect(r.snapshot.context.outcomes).toEqual([
      { contribution: "c1", accepted: true, reason: "accepted by 2 validators (quorum 2)" },
      { contribution: "c2", accepted: false, reason: "contribution c1 to this round was accepted first" },
      { contribution: "c3", accepted: false, reason: expect.stringContaining("2 of 3 validators found no improvement") }
    ])
  })

  it("rejects what has no quorum at the evaluating deadline; ignores duplicates, strangers' votes and events out of their state", () => {
    const r = fold([
      submit("c0"),
      { type: "opened" },
      submit("c1"),
      submit("c1", "other"),
      submit("c2", "cand-c1"),
      { type: "close" },
      submit("late"),
      vote("c1", "v1", true),
      vote("c1", "mallory", true),
      vote("nope", "v2", true),
      { type: "deadline" }
    ])
    expect(r.snapshot.context.contributions.map((c) => c.id)).toEqual(["c1"])
    expect(r.snapshot.value).toBe("deciding")
    expect(r.snapshot.context.outcomes).toEqual([{ contribution: "c1", accepted: false, reason: expect.stringContaining("no quorum before the deadline: 1 of the 2 votes needed") }])
  })

  it("accepts at most one contribution per round, whatever happens (property)", () => {
    const event: fc.Arbitrary<RoundMachineEvent> = fc.oneof(
      fc.constantFrom<RoundMachineEvent>({ type: "opened" }, { type: "close" }, { type: "deadline" }, { type: "recorded" }),
      fc.nat({ max: 4 }).map((i) => submit(`c${i}`)),
      fc.record({ c: fc.nat({ max: 4 }), v: fc.nat({ max: 3 }), p: fc.boolean() }).map(({ c, v, p }) => vote(`c${c}`, `v${v}`, p))
    )
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const { snapshot } = fold(events)
        expect(snapshot.context.outcomes.filter((o) => o.accepted).length).toBeLessThanOrEqual(1)
        // Replaying the same events (a restart) reaches the same state.
        expect(fold(events).snapshot.context).toEqual(snapshot.context)
      }),
      { numRuns: 300 }
    )
  })
})
