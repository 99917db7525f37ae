/**
 * A training epoch: planning → frozen → training (round after round) → evaluating → completed,
 * or rolled back. Pure: the epoch scheduler hosts it, feeds it what happened (a plan promoted,
 * the plan frozen, each round started, completed or failed, the evaluation, an abort) and records
 * what each transition stands for; replaying an epoch's events through it brings it back to
 * where it was, whatever state a restart found it in.
 *
 * The plan is frozen for the epoch's rounds: a plan promoted while a round runs waits, and takes
 * over only at the boundary, before the next round starts. A failed round is run again (its
 * microbatches were not applied); the epoch keeps its rounds' count. An epoch whose evaluation
 * finds no improvement is rolled back: its rounds' updates do not become the model. An abort
 * rolls back any epoch not yet ended; an ended one (completed or rolled back) changes no more.
 */
import { and, assign, setup, type SnapshotFrom } from "xstate"

export type EpochMachineEvent =
  | { readonly type: "promoted"; readonly planId: string }
  | { readonly type: "frozen"; readonly planId: string }
  | { readonly type: "roundStarted"; readonly round: string }
  | { readonly type: "roundCompleted"; readonly round: string }
  | { readonly type: "roundFailed"; readonly round: string; readonly reason: string }
  | { readonly type: "evaluated"; readonly lossBefore: number; readonly lossAfter: number }
  | { readonly type: "abort"; readonly reason: string }

export interface EpochMachineContext {
  readonly epoch: string
  /** Rounds the epoch trains. */
  readonly rounds: number
  /** The plan the rounds run on: set when frozen, replaced only between rounds. */
  readonly plan: string | undefined
  /** A plan promoted after the freeze, waiting for the next boundary. */
  readonly pending: string | undefined
  /** The round running, if one is. */
  readonly running: string | undefined
  /** Rounds completed, in order, with the plan each ran on. */
  readonly completed: ReadonlyArray<{ readonly round: string; readonly plan: string }>
  readonly failures: number
  /** Why the epoch was rolled back, once it is. */
  readonly reason: string | undefined
}

export type EpochInput = { readonly epoch: string; readonly rounds: number }

/** Whether the evaluation lets the epoch's weights become the model: held-out loss strictly lower. */
export const improvesHeldOut = (lossBefore: number, lossAfter: number): boolean => lossAfter < lossBefore

/** Why an epoch whose evaluation found no improvement is rolled back. */
export const noGainReason = (lossBefore: number, lossAfter: number): string => `held-out loss ${lossBefore.toFixed(4)} -> ${lossAfter.toFixed(4)}: no improvement`

const epochMachineSetup = setup({
  types: { context: {} as EpochMachineContext, events: {} as EpochMachineEvent, input: {} as EpochInput },
  actions: {
    propose: assign({ pending: ({ event }) => (event.type === "promoted" ? event.planId : undefined) }),
    freeze: assign({ plan: ({ event }) => (event.type === "frozen" ? event.planId : undefined), pending: () => undefined }),
    /** At a boundary: the plan promoted meanwhile takes over. */
    swap: assign({ plan: ({ context }) => context.pending ?? context.plan, pending: () => undefined }),
    start: assign({ running: ({ event }) => (event.type === "roundStarted" ? event.round : undefined) }),
    complete: assign({
      completed: ({ context }) => [...context.completed, { round: context.running!, plan: context.plan! }],
      running: () => undefined
    }),
    fail: assign({ failures: ({ context }) => context.failures + 1, running: () => undefined }),
    abort: assign({ reason: ({ event }) => (event.type === "abort" ? event.reason : undefined) }),
    noGain: assign({
      reason: ({ event }) => (event.type === "evaluated" ? noGainReason(event.lossBefore, event.lossAfter) : undefined)
    })
  },
  guards: {
    /** The plan frozen is the one promoted for this epoch. */
    promotedPlan: ({ context, event }) => event.type === "frozen" && event.planId === context.pending,
    /** The event is about the round that runs. */
    thisRound: ({ context, event }) => (event.type === "roundCompleted" || event.type === "roundFailed") && event.round === context.running,
    /** A round not run yet (a failed one may start again). */
    newRound: ({ context, event }) => event.type === "roundStarted" && !context.completed.some((c) => c.round === event.round),
    lastRound: ({ context }) => context.completed.length + 1 >= context.rounds,
    improved: ({ event }) => event.type === "evaluated" && improvesHeldOut(event.lossBefore, event.lossAfter)
  }
})

export const epochMachine = epochMachineSetup.createMachine({
  id: "epoch",
  context: ({ input }) => ({ epoch: input.epoch, rounds: input.rounds, plan: undefined, pending: undefined, running: undefined, completed: [], failures: 0, reason: undefined }),
  initial: "planning",
  states: {
    planning: {
      on: {
        abort: { target: "rolledBack", actions: "abort" },
        promoted: { actions: "propose" },
        frozen: { guard: "promotedPlan", target: "frozen", actions: "freeze" }
      }
    },
    // Before the first round is a boundary too: a plan promoted since the freeze takes over here.
    frozen: {
      on: { abort: { target: "rolledBack", actions: "abort" }, roundStarted: { guard: "newRound", target: "training", actions: ["swap", "start"] }, promoted: { actions: "propose" } }
    },
    training: {
      initial: "running",
      on: { abort: { target: "rolledBack", actions: "abort" }, promoted: { actions: "propose" } },
      states: {
        running: {
          on: {
            roundCompleted: [
              { guard: and(["thisRound", "lastRound"]), target: "#epoch.evaluating", actions: "complete" },
              { guard: "thisRound", target: "boundary", actions: "complete" }
            ],
            roundFailed: { guard: "thisRound", target: "boundary", actions: "fail" }
          }
        },
        boundary: {
          entry: "swap",
          on: { roundStarted: { guard: "newRound", target: "running", actions: "start" } }
        }
      }
    },
    evaluating: {
      on: {
        abort: { target: "rolledBack", actions: "abort" },
        evaluated: [{ guard: "improved", target: "completed" }, { target: "rolledBack", actions: "noGain" }]
      }
    },
    completed: { type: "final" },
    rolledBack: { type: "final" }
  }
})

export type EpochSnapshot = SnapshotFrom<typeof epochMachine>
