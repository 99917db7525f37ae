import { Either, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { newEvent, type NewEvent } from "../ledger/events.ts"
import { Plan, planIdRefusal } from "../pipeline/plan.ts"
import type { Projection } from "./projection.ts"
import { schemaCodec } from "./state-codec.ts"

export type PlanStatus = "planned" | "promoted" | "frozen"

export type PlanEntry = {
  readonly plan: Plan
  status: PlanStatus
  readonly plannedSeq: number
  promotedSeq?: number
  frozenSeq?: number
}

export type PlansState = {
  readonly plans: Map<string, PlanEntry>
  /** planId → seq of its `PlanFrozen`; kept apart so that a fold of chain A alone knows it too. */
  readonly frozen: Map<string, number>
}

const Seq = Schema.Int.pipe(Schema.nonNegative())

const PlansStateSchema = Schema.Struct({
  plans: Schema.Map({
    key: Schema.String,
    value: Schema.Struct({
      plan: Plan,
      status: Schema.Literal("planned", "promoted", "frozen"),
      plannedSeq: Seq,
      promotedSeq: Schema.optional(Seq),
      frozenSeq: Schema.optional(Seq)
    })
  }),
  frozen: Schema.Map({ key: Schema.String, value: Seq })
})

const roundKey = (epoch: string, round: string) => `${epoch}\u0000${round}`

/**
 * Partition plans: drafted (`EpochPlanned`) and promoted (`PlanPromoted`) on their epoch's
 * stream, then frozen for their epoch/round (`PlanFrozen` on chain A).
 */
export const PlansProjection: Projection<PlansState, unknown> = {
  name: "plans",
  initial: () => ({ plans: new Map(), frozen: new Map() }),
  evolve: (s, e) => {
    switch (e.type) {
      case "EpochPlanned":
        s.plans.set(e.data.plan.planId, { plan: e.data.plan, status: "planned", plannedSeq: e.envelope.seq })
        break
      case "PlanPromoted": {
        const p = s.plans.get(e.data.planId)
        if (p) Object.assign(p, { status: "promoted", promotedSeq: e.envelope.seq })
        break
      }
      case "PlanFrozen": {
        s.frozen.set(e.data.planId, e.envelope.seq)
        const p = s.plans.get(e.data.planId)
        if (p) Object.assign(p, { status: "frozen", frozenSeq: e.envelope.seq })
        break
      }
    }
    return s
  },
  view: (s) => [...s.plans.values()].sort((a, b) => a.plannedSeq - b.plannedSeq),
  snapshot: schemaCodec(1, PlansStateSchema)
}

export const PlanRefusalKind = Schema.Literal("BadId", "IdTaken", "RoundTaken", "AlreadyPromoted", "AlreadyFrozen")
export type PlanRefusalKind = typeof PlanRefusalKind.Type

export class PlanRefused extends Schema.TaggedError<PlanRefused>()("PlanRefused", { kind: PlanRefusalKind, message: Schema.String }) {}

const refuse = (kind: PlanRefusalKind, message: string) => Either.left(new PlanRefused({ kind, message }))

/** The plan promoted (or frozen) for an epoch/round, if any. */
export const planForRound = (s: PlansState, epoch: string, round: string): PlanEntry | undefined => {
  const key = roundKey(epoch, round)
  for (const p of s.plans.values()) if (p.status !== "planned" && roundKey(p.plan.epoch, p.plan.round) === key) return p
  return undefined
}

/**
 * Promote a validated plan: record it and its promotion on its epoch's stream. A plan id names
 * one plan forever, and an epoch/round runs under one plan, so both are refused when taken. An
 * id that is malformed, or of the content-derived form without matching the content, is refused
 * before anything else: it must never take an id from the plan that id belongs to.
 */
export const decidePromote = (s: PlansState, plan: Plan): Either.Either<ReadonlyArray<NewEvent>, PlanRefused> => {
  const badId = planIdRefusal(plan.planId, plan)
  if (badId !== undefined) return refuse("BadId", badId)
  const known = s.plans.get(plan.planId)
  if (known && canonicalize(known.plan) !== canonicalize(plan))
    return refuse("IdTaken", `plan id ${plan.planId} already names a different plan (seq ${known.plannedSeq})`)
  if (known && known.status !== "planned") return refuse("AlreadyPromoted", `plan ${plan.planId} is already promoted (seq ${known.promotedSeq})`)
  const other = planForRound(s, plan.epoch, plan.round)
  if (other) return refuse("RoundTaken", `round ${plan.round} of epoch ${plan.epoch} already runs under plan ${other.plan.planId}`)
  const promoted = newEvent("PlanPromoted", { planId: plan.planId, epoch: plan.epoch, round: plan.round })
  return Either.right(known ? [promoted] : [newEvent("EpochPlanned", { plan }), promoted])
}

/** Freeze a promoted plan for its epoch/round, once. */
export const decideFreeze = (s: PlansState, plan: Plan): Either.Either<ReadonlyArray<NewEvent>, PlanRefused> =>
  s.frozen.has(plan.planId)
    ? refuse("AlreadyFrozen", `plan ${plan.planId} is already frozen (seq ${s.frozen.get(plan.planId)})`)
    : Either.right([newEvent("PlanFrozen", { planId: plan.planId, epoch: plan.epoch, round: plan.round })])
