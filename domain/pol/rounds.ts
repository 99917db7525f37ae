/**
 * Rounds as the log holds them, and what makes each round event acceptable on replay: a round
 * opened by a trusted ledger key; contributions signed by registered contributors on the round's
 * base; verdicts signed by the round's own validators, their pass consistent with their figures;
 * an acceptance only with the quorum behind it, once per round. The coordinator and the replay
 * apply the same rules, so a log written around the coordinator fails audit.
 */
import { canonicalize } from "../ledger/jcs.ts"
import { blockHash, headerOf } from "../ledger/blocks.ts"
import type { EventData } from "../ledger/events.ts"
import { signHex, verifyHex } from "../ledger/signing.ts"
import type { Projection } from "../projections/projection.ts"
import { contributorProblem, type ContributorsState } from "../projections/contributors.ts"
import { shortfall, type PoLSettings } from "./evaluation.ts"
import { decideRound, type Vote } from "./quorum.ts"
import { BASE_UNITS_PER_BLY } from "../rewards/inference.ts"
import { cappedAmount } from "../rewards/issuance.ts"

export type RoundEntry = {
  readonly opened: EventData<"RoundOpened">
  readonly contributions: Map<string, EventData<"ContributionSubmitted">["block"]>
  /** Every verdict recorded, per contribution. */
  readonly verdicts: Map<string, EventData<"PoLEvaluated">[]>
  accepted: string | undefined
  /** The rejected contributions, each with why. */
  readonly rejected: Map<string, string>
  /** The learning reward the accepted contribution earned and has not been paid yet. */
  owed: { readonly to: string; readonly amount: bigint } | undefined
  closed: boolean
}
export type RoundsState = Map<string, RoundEntry>

export const RoundsProjection: Projection<RoundsState, unknown> = {
  name: "rounds",
  initial: () => new Map(),
  evolve: (s, e) => {
    if (e.type === "RoundOpened")
      s.set(e.data.round, {
        opened: e.data,
        contributions: new Map(),
        verdicts: new Map(),
        accepted: undefined,
        rejected: new Map(),
        owed: undefined,
        closed: false
      })
    if (e.type === "RewardPaid" && e.data.kind === "learning") {
      const paid = s.get(roundOfCause(e.data.cause))
      if (paid !== undefined) paid.owed = undefined
    }
    const r = "round" in (e.data as object) ? s.get((e.data as { readonly round: string }).round) : undefined
    if (r === undefined) return s
    if (e.type === "ContributionSubmitted") r.contributions.set(e.data.contribution, e.data.block)
    if (e.type === "PoLEvaluated") {
      r.verdicts.set(e.data.contribution, [...(r.verdicts.get(e.data.contribution) ?? []), e.data])
    }
    if (e.type === "ContributionAccepted") {
      r.accepted = e.data.contribution
      r.owed = { to: r.contributions.get(e.data.contribution)!.contributor, amount: learningReward(e.data.improvement) }
    }
    if (e.type === "ContributionRejected") {
      r.rejected.set(e.data.contribution, e.data.reason)
    }
    if (e.type === "RoundClosed") r.closed = true
    return s
  },
  view: (s) =>
    [...s.values()].map((r) => ({
      round: r.opened.round,
      target: r.opened.target,
      contributions: [...r.contributions.keys()],
      accepted: r.accepted ?? null,
      closed: r.closed
    }))
}

type Opening = Omit<EventData<"RoundOpened">, "signature" | "registrar">
type Verdict = Omit<EventData<"PoLEvaluated">, "signature">

const hexOf = (act: string, v: object) => Buffer.from(canonicalize({ act, ...v }), "utf8").toString("hex")
const openingHex = (o: Omit<EventData<"RoundOpened">, "signature">) => hexOf("open round", o)
const verdictHex = (v: Verdict) => hexOf("evaluate contribution", v)

export const signOpening = (o: Opening, ledger: { readonly publicKey: string; readonly seed: string }): EventData<"RoundOpened"> => {
  const unsigned = { ...o, registrar: ledger.publicKey }
  return { ...unsigned, signature: signHex(ledger.seed, openingHex(unsigned)) }
}

export const signVerdict = (v: Verdict, seed: string): EventData<"PoLEvaluated"> => ({ ...v, signature: signHex(seed, verdictHex(v)) })

/** A learning reward: 1 BLY per percent of held-out loss the accepted contribution took off, in whole basis points. */
export const learningReward = (improvement: number): bigint => BigInt(Math.max(0, Math.floor(improvement * 10_000))) * (BASE_UNITS_PER_BLY / 100n)

/** The improvement an acceptance records: the least any passing verdict measured. */
export const acceptedImprovement = (r: RoundEntry, contribution: string): number => {
  const passing = (r.verdicts.get(contribution) ?? []).filter((v) => v.passes).map((v) => v.improvement)
  return passing.length === 0 ? 0 : Math.min(...passing)
}

/** What became of a contribution of a round, so far. */
export const outcomeOf = (r: RoundEntry, contribution: string): "accepted" | "rejected" | "undecided" =>
  r.accepted === contribution ? "accepted" : r.rejected.has(contribution) ? "rejected" : "undecided"

/** The votes recorded on a contribution, in order. */
const votesOf = (r: RoundEntry, contribution: string): ReadonlyArray<Vote> => (r.verdicts.get(contribution) ?? []).map((v) => ({ validator: v.validator, passes: v.passes }))

/** A learning reward's cause: the round and the contribution. */
export const learningCause = (round: string, contribution: string) => `${round}/${contribution}`
const roundOfCause = (cause: string) => cause.slice(0, cause.lastIndexOf("/"))

export const settingsOf = (o: EventData<"RoundOpened">): PoLSettings => ({ epsilon: o.epsilon, minWinShare: o.minWinShare, batches: o.batches })

/**
 * Why a learning reward cannot be paid, if it cannot: it must pay the contribution a round
 * accepted and has not paid yet, the improvement's reward or what its epoch had `left`, if less.
 */
export const learningRewardProblem = (rounds: RoundsState, p: EventData<"RewardPaid">, left: bigint): string | undefined => {
  const round = roundOfCause(p.cause)
  const { owed, accepted } = rounds.get(round) ?? {}
  if (owed === undefined || accepted === undefined || learningCause(round, accepted) !== p.cause)
    return `a learning reward for ${p.cause}, which no accepted contribution earned (or was paid already)`
  const amount = cappedAmount(owed.amount, left)
  if (owed.to !== p.to || amount !== BigInt(p.amount)) return `a learning reward of ${p.amount} to ${p.to} for ${p.cause}, which earned ${owed.amount} for ${owed.to} (${amount} within its epoch's cap)`
  return undefined
}

/** Why a round event cannot be applied to `rounds` (and the contributor registry), if it cannot. */
export const roundEventProblem = (
  rounds: RoundsState,
  contributors: ContributorsState,
  e: { readonly type: string; readonly data: unknown },
  ledgerKeys: ReadonlyArray<string>
): string | undefined => {
  switch (e.type) {
    case "RoundOpened": {
      const o = e.data as EventData<"RoundOpened">
      if (rounds.has(o.round)) return `round ${o.round} is already open`
      if (!ledgerKeys.includes(o.registrar)) return `round ${o.round} is opened by ${o.registrar}, which is not a ledger key trusted here`
      const { signature, ...unsigned } = o
      if (!verifyHex(o.registrar, openingHex(unsigned), signature)) return `round ${o.round}: the signature is not ${o.registrar}'s`
      return undefined
    }
    case "ContributionSubmitted": {
      const c = e.data as EventData<"ContributionSubmitted">
      const r = rounds.get(c.round)
      if (r === undefined || r.closed) return `contribution ${c.contribution}: round ${c.round} is not open`
      if (r.contributions.has(c.contribution)) return `contribution ${c.contribution} was submitted already`
      if (c.block.name !== r.opened.target) return `contribution ${c.contribution} is for ${c.block.name}, not the round's ${r.opened.target}`
      if (c.block.dependsOn.length !== 1 || c.block.dependsOn[0] !== r.opened.base) return `contribution ${c.contribution} is not based on the round's base ${r.opened.base}`
      if (blockHash(headerOf(c.block)) !== c.block.hash || !verifyHex(c.block.contributor, c.block.hash, c.block.signature)) return `contribution ${c.contribution}: the block's hash or signature does not verify`
      const writer = contributorProblem(contributors, c.block.contributor, false)
      return writer === undefined ? undefined : `contribution ${c.contribution}: ${writer}`
    }
    case "PoLEvaluated": {
      const v = e.data as EventData<"PoLEvaluated">
      const r = rounds.get(v.round)
      if (r === undefined || !r.contributions.has(v.contribution)) return `a verdict on contribution ${v.contribution}, which round ${v.round} does not have`
      if (r.closed) return `a verdict on contribution ${v.contribution} after round ${v.round} closed`
      if (!r.opened.validators.includes(v.validator)) return `a verdict by ${v.validator}, who is not a validator of round ${v.round}`
      if (votesOf(r, v.contribution).some((x) => x.validator === v.validator)) return `a second verdict by ${v.validator} on contribution ${v.contribution}`
      if (r.opened.heldOut === null ? v.heldOut === undefined : v.heldOut !== undefined && v.heldOut !== r.opened.heldOut)
        return `the verdict by ${v.validator} on ${v.contribution} does not name the held-out text it drew from as round ${v.round} requires`
      const { signature, ...unsigned } = v
      if (!verifyHex(v.validator, verdictHex(unsigned), signature)) return `the verdict on ${v.contribution}: the signature is not ${v.validator}'s`
      const pass = shortfall({ baselineLoss: v.baselineLoss, candidateLoss: v.candidateLoss, improvement: v.improvement, wins: v.wins, batches: v.batches }, settingsOf(r.opened)) === undefined
      return pass === v.passes ? undefined : `the verdict by ${v.validator} says ${v.passes ? "pass" : "fail"}, but its own figures say otherwise`
    }
    case "ContributionAccepted": {
      const a = e.data as EventData<"ContributionAccepted">
      const r = rounds.get(a.round)
      if (r === undefined || !r.contributions.has(a.contribution)) return `acceptance of contribution ${a.contribution}, which round ${a.round} does not have`
      if (r.accepted !== undefined) return `round ${a.round} accepted ${r.accepted} already`
      if (r.closed) return `acceptance of contribution ${a.contribution} after round ${a.round} closed`
      if (r.contributions.get(a.contribution)!.hash !== a.block) return `acceptance of contribution ${a.contribution} names block ${a.block}, not its candidate`
      const d = decideRound(new Set(r.opened.validators), votesOf(r, a.contribution), false)
      if (d.kind !== "accepted") return `acceptance of contribution ${a.contribution} without the quorum of its validators`
      const measured = acceptedImprovement(r, a.contribution)
      return a.improvement === measured ? undefined : `acceptance of contribution ${a.contribution} records improvement ${a.improvement}, but its validators measured at least ${measured}`
    }
    case "RoundClosed": {
      const c = e.data as EventData<"RoundClosed">
      const r = rounds.get(c.round)
      return r === undefined || r.closed ? `round ${c.round} is not open` : undefined
    }
    default:
      return undefined
  }
}
