/**
 * Where one training epoch stands, from the log alone: what it was scheduled to run, the epoch
 * machine brought to its state by the recorded events (each event is one of the machine's
 * transitions), the rounds completed with their checkpoints, and whether its weights already
 * became the model. The epoch scheduler resumes from this after a restart, whatever state the
 * restart found the epoch in.
 */
import { initialTransition, transition } from "xstate"
import type { EventData } from "../ledger/events.ts"
import { epochMachine, type EpochMachineEvent, type EpochSnapshot } from "../machines/epoch.ts"
import type { Projection } from "../projections/projection.ts"

export interface CompletedRound {
  readonly round: string
  readonly planId: string
  /** Optimiser steps of the epoch taken by the end of this round. */
  readonly step: number
  readonly loss: number
  readonly checkpoint: string
}

export interface EpochProgress {
  readonly epoch: string
  scheduled: EventData<"EpochScheduled"> | undefined
  /** The machine's events, in log order. */
  readonly transitions: EpochMachineEvent[]
  readonly completed: CompletedRound[]
  /** The held-out losses of the training the epoch recorded on the model, once it has. */
  trained: Losses | undefined
  /** The held-out losses its completion recorded, once it has completed. */
  completedWith: Losses | undefined
}

export interface Losses {
  readonly lossBefore: number
  readonly lossAfter: number
}

/** The epoch's events as a fold of the whole log (a plan's freeze is on chain A, its training on chain B). */
export const epochProgress = (epoch: string): Projection<EpochProgress, unknown> => ({
  name: `epoch-progress-${epoch}`,
  initial: () => ({ epoch, scheduled: undefined, transitions: [], completed: [], trained: undefined, completedWith: undefined }),
  evolve: (s, e) => {
    const ours = "epoch" in e.data && e.data.epoch === epoch
    if (e.type === "EpochPlanned" || !ours) return s
    switch (e.type) {
      case "EpochScheduled":
        s.scheduled = e.data
        break
      case "PlanPromoted":
        s.transitions.push({ type: "promoted", planId: e.data.planId })
        break
      case "PlanFrozen":
        s.transitions.push({ type: "frozen", planId: e.data.planId })
        break
      case "RoundStarted":
        s.transitions.push({ type: "roundStarted", round: e.data.round })
        break
      case "RoundCompleted": {
        const { round, planId, step, loss, checkpoint } = e.data
        s.transitions.push({ type: "roundCompleted", round })
        s.completed.push({ round, planId, step, loss, checkpoint })
        break
      }
      case "RoundFailed":
        s.transitions.push({ type: "roundFailed", round: e.data.round, reason: e.data.reason })
        break
      case "ModelTrained":
        s.trained = { lossBefore: e.data.heldOutLossBefore, lossAfter: e.data.heldOutLossAfter }
        break
      case "EpochCompleted": {
        const { lossBefore, lossAfter } = e.data
        s.transitions.push({ type: "evaluated", lossBefore, lossAfter })
        s.completedWith = { lossBefore, lossAfter }
        break
      }
      case "EpochRolledBack":
        s.transitions.push({ type: "abort", reason: e.data.reason })
        break
    }
    return s
  },
  view: (s) => s
})

/** The epoch machine after every recorded transition of an epoch scheduled for `rounds` rounds. */
export const epochState = (p: EpochProgress, rounds: number): EpochSnapshot => {
  let [s] = initialTransition(epochMachine, { epoch: p.epoch, rounds })
  for (const e of p.transitions) [s] = transition(epochMachine, s, e)
  return s
}

/** The id of an epoch's `i`-th round (from 0). */
export const roundId = (i: number): string => `round-${i}`
