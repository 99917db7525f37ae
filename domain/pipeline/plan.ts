import { Schema } from "effect"
import { hashCanonical } from "../ledger/hash.ts"

/** Epoch ids name the `epoch-<id>` stream, so they keep to the characters stream names allow. */
const EPOCH_ID = /^[A-Za-z0-9_.:-]{1,128}$/

/** Why an epoch id is refused, or undefined when it is fine. */
export const epochIdProblem = (epoch: string): string | undefined =>
  EPOCH_ID.test(epoch) ? undefined : `epoch ${printable(epoch)} must be 1 to 128 of A-Z a-z 0-9 _ . : -`

/**
 * Plan ids are printed by every plan command and name a plan on the ledger forever, so they keep
 * to characters no terminal interprets: a letter or digit, then up to 127 of A-Z a-z 0-9 . _ : -.
 */
const PLAN_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

/** An id of this form claims to be derived from the plan's content (see `derivedPlanId`). */
const DERIVED_PLAN_ID = /^plan-[0-9a-f]{12}$/

/** A string as it may be shown to people: quoted, every character outside printable ASCII escaped, long ones cut. */
export const printable = (s: string, max = 64): string => {
  const cut = s.length > max ? `${s.slice(0, max)}...` : s
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
}

/** Why a plan id is refused, or undefined when it is fine. */
export const planIdProblem = (planId: string): string | undefined =>
  planId.length === 0
    ? "the plan id is empty"
    : PLAN_ID.test(planId)
      ? undefined
      : `plan id ${printable(planId)} must start with a letter or digit, then up to 127 of A-Z a-z 0-9 . _ : -`

/** The plan id as messages show it: itself when valid, otherwise quoted and escaped. */
export const planIdLabel = (planId: string): string => (planId.length === 0 ? "(no id)" : PLAN_ID.test(planId) ? planId : printable(planId))

/** What a plan says, without its id: what a content-derived id is the hash of. */
export interface PlanBody {
  readonly epoch: string
  readonly round: string
  readonly stages: ReadonlyArray<{ readonly node: string; readonly start: number; readonly end: number }>
  readonly zero1: boolean
  readonly actCkpt: boolean
}

/** The content-derived id: `plan-` and the first 12 hex digits of sha256 over the JCS form of the body. */
export const derivedPlanId = (body: PlanBody): string => {
  const { epoch, round, stages, zero1, actCkpt } = body
  const canonical = { epoch, round, stages: stages.map(({ node, start, end }) => ({ node, start, end })), zero1, actCkpt }
  return `plan-${hashCanonical(canonical).slice(0, 12)}`
}

/**
 * An id of the derived form must be the hash of this content: otherwise a changed plan could keep
 * the id of the plan it was changed from, and by taking that id first lock the genuine plan out.
 * Other ids are chosen by people and bind nothing. Returns the id the content derives when they
 * differ, undefined when the id is fine.
 */
export const derivedIdMismatch = (planId: string, body: PlanBody): string | undefined => {
  if (!DERIVED_PLAN_ID.test(planId)) return undefined
  const derived = derivedPlanId(body)
  return derived === planId ? undefined : derived
}

/** Why an id of the derived form does not name this content. */
export const derivedIdMismatchMessage = (planId: string, derived: string): string =>
  `plan id ${planId} has the content-derived form but this content derives ${derived}: a changed plan cannot keep the id of the plan it came from`

/** Every reason a plan may not carry its id (`planIdProblem`, then `derivedIdMismatch`), or undefined. */
export const planIdRefusal = (planId: string, body: PlanBody): string | undefined => {
  const problem = planIdProblem(planId)
  if (problem !== undefined) return problem
  const derived = derivedIdMismatch(planId, body)
  return derived === undefined ? undefined : derivedIdMismatchMessage(planId, derived)
}

/** One pipeline stage: a contiguous, inclusive layer range on one node. */
export const PlanStage = Schema.Struct({
  node: Schema.String.pipe(Schema.minLength(1)),
  start: Schema.Int.pipe(Schema.nonNegative()),
  end: Schema.Int.pipe(Schema.nonNegative())
})
export type PlanStage = typeof PlanStage.Type

/** A partition plan for one epoch/round, as snapshotted, validated, promoted and frozen. */
export const Plan = Schema.Struct({
  planId: Schema.String.pipe(Schema.minLength(1)),
  epoch: Schema.String.pipe(Schema.pattern(EPOCH_ID)),
  round: Schema.String.pipe(Schema.minLength(1)),
  stages: Schema.Array(PlanStage).pipe(Schema.minItems(1)),
  zero1: Schema.Boolean,
  actCkpt: Schema.Boolean
})
export type Plan = typeof Plan.Type

/**
 * A plan as a person wrote it, before validation: only its shape is checked here, so that
 * validation can name every wrong value (a negative index, an unknown node) instead of a
 * schema error. The memory flags default to off.
 */
export const PlanDraft = Schema.Struct({
  planId: Schema.String,
  epoch: Schema.String,
  round: Schema.String,
  stages: Schema.Array(Schema.Struct({ node: Schema.String, start: Schema.Number, end: Schema.Number })),
  zero1: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  actCkpt: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type PlanDraft = typeof PlanDraft.Type
