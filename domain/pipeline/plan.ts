import { Schema } from "effect"

/** Epoch ids name the `epoch-<id>` stream, so they keep to the characters stream names allow. */
const EPOCH_ID = /^[A-Za-z0-9_.:-]{1,128}$/

/** Why an epoch id is refused, or undefined when it is fine. */
export const epochIdProblem = (epoch: string): string | undefined =>
  EPOCH_ID.test(epoch) ? undefined : `epoch ${JSON.stringify(epoch)} must be 1 to 128 of A-Z a-z 0-9 _ . : -`

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
