import { describe, expect, it } from "vitest"
import type { DecodedEvent } from "../../../domain/ledger/envelope.ts"
import type { EventData, EventType } from "../../../domain/ledger/events.ts"
import { epochProgress, epochState } from "../../../domain/pipeline/epoch-progress.ts"
import { fold } from "../../../domain/projections/projection.ts"

const ev = <T extends EventType>(type: T, data: EventData<T>) => ({ type, data }) as unknown as DecodedEvent
const hash = (c: string) => c.repeat(64)
const planned = [
  ev("PlanPromoted", { planId: "p1", epoch: "E1", round: "round-0" }),
  ev("PlanFrozen", { planId: "p1", epoch: "E1", round: "round-0" }),
  // Another epoch's events are not this one's.
  ev("PlanPromoted", { planId: "q1", epoch: "E2", round: "round-0" }),
  ev("RoundStarted", { epoch: "E2", round: "round-0", planId: "q1" })
]
const completed = (round: string, step: number) => ev("RoundCompleted", { epoch: "E1", round, planId: "p1", step, loss: 1, checkpoint: hash(String(step)) })
const at = (events: ReadonlyArray<DecodedEvent>) => {
  const p = fold(epochProgress("E1"), events)
  return { p, s: epochState(p, 2) }
}

describe("an epoch's progress from the log", () => {
  it("brings the epoch machine to the state its recorded events leave it in, whatever that is", () => {
    expect(at([]).s.value).toBe("planning")
    expect(at(planned.slice(0, 1)).s.value).toBe("planning")
    expect(at(planned).s.value).toBe("frozen")
    const started = [...planned, ev("RoundStarted", { epoch: "E1", round: "round-0", planId: "p1" })]
    expect(at(started).s.value).toEqual({ training: "running" })
    expect(at([...started, ev("RoundFailed", { epoch: "E1", round: "round-0", reason: "cut off" })]).s.value).toEqual({ training: "boundary" })
    const first = [...started, completed("round-0", 3)]
    expect(at(first).s.value).toEqual({ training: "boundary" })
    const both = [...first, ev("RoundStarted", { epoch: "E1", round: "round-1", planId: "p1" }), completed("round-1", 6)]
    const evaluating = at(both)
    expect(evaluating.s.value).toBe("evaluating")
    expect(evaluating.p.completed.map((c) => [c.round, c.step, c.checkpoint])).toEqual([["round-0", 3, hash("3")], ["round-1", 6, hash("6")]])
    const done = at([...both, ev("EpochCompleted", { epoch: "E1", rounds: 2, lossBefore: 2, lossAfter: 1.5 })])
    expect(done.s.value).toBe("completed")
    expect(done.p.completedWith).toEqual({ lossBefore: 2, lossAfter: 1.5 })
    const back = at([...both, ev("EpochRolledBack", { epoch: "E1", reason: "no improvement" })])
    expect(back.s.value).toBe("rolledBack")
    expect(back.s.context.reason).toBe("no improvement")
  })

  it("knows the epoch's weights became the model when a training outcome names it, and what it scheduled", () => {
    const scheduled = { epoch: "E1", rounds: 2, steps: 3, batch: 4, microbatches: 2, lr: 0.01, seed: 1, corpus: hash("a"), heldOut: hash("b") }
    const trained = (epoch: string | undefined) =>
      ev("ModelTrained", { steps: 6, corpus: hash("a"), heldOut: hash("b"), trainLossBefore: 3, trainLossAfter: 2, heldOutLossBefore: 3.1, heldOutLossAfter: 2.9, blocks: [], ...(epoch === undefined ? {} : { epoch }) })
    const p = at([ev("EpochScheduled", scheduled), trained(undefined), trained("E2")]).p
    expect(p.scheduled).toEqual(scheduled)
    expect(p.trained).toBeUndefined()
    expect(at([trained("E1")]).p.trained).toEqual({ lossBefore: 3.1, lossAfter: 2.9 })
  })
})
