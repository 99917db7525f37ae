import { Schema } from "effect"

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
  epoch: Schema.String.pipe(Schema.minLength(1)),
  round: Schema.String.pipe(Schema.minLength(1)),
  stages: Schema.Array(PlanStage).pipe(Schema.minItems(1)),
  zero1: Schema.Boolean,
  actCkpt: Schema.Boolean
})
export type Plan = typeof Plan.Type
