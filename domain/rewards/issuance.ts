/**
 * How much BLY may come into being, and when: the issuance schedule. Time is cut into epochs
 * counted from the genesis covenant; each epoch may issue at most its cap, which halves every
 * `halvingEvery` epochs. A reward names its epoch: one not later than the log's time has reached
 * when it is recorded, and not earlier than any reward before it. What a reward earned beyond what its
 * epoch has left is not paid: the payment is the lesser of the two, exactly, so a replay can hold
 * every writer to it and the supply never exceeds the schedule.
 */
import { newEvent, type EventData, type NewEvent } from "../ledger/events.ts"
import { GENESIS_AT } from "../ledger/genesis.ts"
import type { BalancesState } from "../projections/balances.ts"
import { BASE_UNITS_PER_BLY } from "./units.ts"

export type IssuanceSchedule = {
  /** An epoch's length in milliseconds. */
  readonly epochMs: number
  /** The cap of the first epochs, in base units. */
  readonly initial: bigint
  /** Epochs between halvings of the cap. */
  readonly halvingEvery: number
}

/** The network's schedule: epochs of a day, 100,000 BLY a day at first, halving every 365 days. */
export const ISSUANCE: IssuanceSchedule = { epochMs: 86_400_000, initial: 100_000n * BASE_UNITS_PER_BLY, halvingEvery: 365 }

/** What epoch `epoch` may issue, in base units. */
export const capOf = (s: IssuanceSchedule, epoch: number): bigint => s.initial >> BigInt(Math.min(256, Math.floor(epoch / s.halvingEvery)))

/** The epoch of a moment (ISO 8601 or ms since 1970), counted from the genesis covenant's; a time that is none counts as the first. */
export const epochAt = (s: IssuanceSchedule, at: string | number): number => {
  const ms = typeof at === "number" ? at : Date.parse(at)
  return Number.isFinite(ms) ? Math.max(0, Math.floor((ms - Date.parse(GENESIS_AT)) / s.epochMs)) : 0
}

/** What `epoch` has left to issue, after the rewards in `balances`. */
export const issuable = (s: IssuanceSchedule, balances: BalancesState, epoch: number): bigint => {
  const left = capOf(s, epoch) - (balances.issued.get(epoch) ?? 0n)
  return left > 0n ? left : 0n
}

/** A reward owed: what it earned, before the cap. */
export type Owed = { readonly to: string; readonly amount: bigint; readonly kind: EventData<"RewardPaid">["kind"]; readonly cause: string }

/**
 * The `RewardPaid` events for `owed`, in order, in the epoch of `now` (or the latest rewarded, if
 * the clock reads earlier): each the lesser of what it earned and what the epoch has left.
 */
export const payRewards = (s: IssuanceSchedule, balances: BalancesState, owed: ReadonlyArray<Owed>, now: number): ReadonlyArray<NewEvent> => {
  const epoch = Math.max(epochAt(s, now), balances.epoch)
  let left = issuable(s, balances, epoch)
  return owed.map((o) => {
    const amount = cappedAmount(o.amount, left)
    left -= amount
    return newEvent("RewardPaid", { to: o.to, amount: amount.toString(), kind: o.kind, cause: o.cause, epoch })
  })
}

/**
 * Why a reward cannot be in the epoch it names, if it cannot, the log's time having reached epoch
 * `reached` (the latest epoch of any event's time so far, this one's included: a clock set back
 * does not take the log's time back); otherwise what that epoch had left for it, which its amount
 * must be the lesser of and what it earned.
 */
export const rewardEpoch = (s: IssuanceSchedule, balances: BalancesState, d: EventData<"RewardPaid">, reached: number): { readonly problem: string } | { readonly left: bigint } => {
  if (d.epoch > reached) return { problem: `a reward in epoch ${d.epoch}, later than the epoch ${reached} the log's time has reached` }
  if (d.epoch < balances.epoch) return { problem: `a reward in epoch ${d.epoch}, after rewards in epoch ${balances.epoch}` }
  return { left: issuable(s, balances, d.epoch) }
}

/** The amount a reward that earned `owed` must pay, with `left` in its epoch. */
export const cappedAmount = (owed: bigint, left: bigint): bigint => (owed < left ? owed : left)
