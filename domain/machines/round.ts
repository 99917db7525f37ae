/**
 * A Proof-of-Learning round: open → collecting → evaluating → deciding → closed. Pure: the round
 * coordinator hosts it, feeds it what happened (the round recorded, a contribution, a validator's
 * verdict, a deadline reached, the decisions recorded) and records what each transition stands for;
 * replaying a round's events through it brings it back to where it was.
 *
 * Contributions are collected until the collecting deadline (or an explicit close); each is
 * decided by the two-thirds quorum of the registered validators (`domain/pol/quorum.ts`) or, at
 * the evaluating deadline, rejected for want of one. A round changes its target part at most once:
 * of the contributions the quorum accepts, the earliest submitted wins, and the others are
 * rejected, since they were measured against a base that is no longer current.
 */
import { assign, setup, type SnapshotFrom } from "xstate"
import { decideRound, type Decision, type Vote } from "../pol/quorum.ts"

export type Contribution = { readonly id: string; readonly candidate: string; readonly contributor: string }

export type RoundMachineEvent =
  | { readonly type: "opened" }
  | { readonly type: "submitted"; readonly contribution: Contribution }
  | { readonly type: "close" }
  | { readonly type: "evaluated"; readonly contribution: string; readonly validator: string; readonly passes: boolean }
  | { readonly type: "deadline" }
  | { readonly type: "recorded" }

export type RoundOutcome = { readonly contribution: string; readonly accepted: boolean; readonly reason: string }

export interface RoundMachineContext {
  readonly round: string
  readonly target: string
  readonly validators: ReadonlyArray<string>
  readonly contributions: ReadonlyArray<Contribution>
  readonly votes: Readonly<Record<string, ReadonlyArray<Vote>>>
  /** Set on entering `deciding`: what becomes of each contribution. */
  readonly outcomes: ReadonlyArray<RoundOutcome>
}

export type RoundInput = { readonly round: string; readonly target: string; readonly validators: ReadonlyArray<string> }

const decisionOf = (c: RoundMachineContext, contribution: string, deadlinePassed: boolean): Decision =>
  decideRound(new Set(c.validators), c.votes[contribution] ?? [], deadlinePassed)

/** Each contribution's outcome; only the earliest accepted one changes the target. */
const outcomesOf = (c: RoundMachineContext, deadlinePassed: boolean): ReadonlyArray<RoundOutcome> => {
  let winner: string | undefined
  return c.contributions.map((k) => {
    const d = decisionOf(c, k.id, deadlinePassed)
    if (d.kind === "accepted" && winner === undefined) {
      winner = k.id
      return { contribution: k.id, accepted: true, reason: `accepted by ${d.for} validators (quorum ${d.quorum})` }
    }
    if (d.kind === "accepted") return { contribution: k.id, accepted: false, reason: `contribution ${winner} to this round was accepted first` }
    return { contribution: k.id, accepted: false, reason: d.kind === "rejected" ? d.reason : "undecided" }
  })
}

const roundMachineSetup = setup({
  types: { context: {} as RoundMachineContext, events: {} as RoundMachineEvent, input: {} as RoundInput },
  actions: {
    collect: assign({
      contributions: ({ context, event }) =>
        event.type === "submitted" && !context.contributions.some((c) => c.id === event.contribution.id || c.candidate === event.contribution.candidate)
          ? [...context.contributions, event.contribution]
          : context.contributions
    }),
    tally: assign({
      votes: ({ context, event }) =>
        event.type === "evaluated" && context.contributions.some((c) => c.id === event.contribution)
          ? { ...context.votes, [event.contribution]: [...(context.votes[event.contribution] ?? []), { validator: event.validator, passes: event.passes }] }
          : context.votes
    }),
    decideNow: assign({ outcomes: ({ context }) => outcomesOf(context, false) }),
    decideAtDeadline: assign({ outcomes: ({ context }) => outcomesOf(context, true) })
  },
  guards: {
    nothingSubmitted: ({ context }) => context.contributions.length === 0,
    /** Every contribution has a decision the remaining votes cannot change. */
    allDecided: ({ context }) => context.contributions.every((c) => decisionOf(context, c.id, false).kind !== "pending")
  }
})

export const roundMachine = roundMachineSetup.createMachine({
  id: "round",
  context: ({ input }) => ({ round: input.round, target: input.target, validators: input.validators, contributions: [], votes: {}, outcomes: [] }),
  initial: "open",
  states: {
    open: { on: { opened: "collecting" } },
    collecting: {
      on: {
        submitted: { actions: "collect" },
        close: [{ guard: "nothingSubmitted", target: "closed" }, { target: "evaluating" }],
        deadline: [{ guard: "nothingSubmitted", target: "closed" }, { target: "evaluating" }]
      }
    },
    evaluating: {
      always: { guard: "allDecided", target: "deciding", actions: "decideNow" },
      on: {
        evaluated: { actions: "tally" },
        deadline: { target: "deciding", actions: "decideAtDeadline" }
      }
    },
    deciding: { on: { recorded: "closed" } },
    closed: { type: "final" }
  }
})

export type RoundSnapshot = SnapshotFrom<typeof roundMachine>
