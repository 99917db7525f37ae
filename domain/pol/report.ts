/**
 * A round's decision as its contributor hears it (over the bus, over HTTP, or printed by the CLI):
 * the outcome and its reason, each counted validator's figures, and the reward when accepted.
 */
import { Schema } from "effect"
import type { EventData } from "../ledger/events.ts"

export const Verdict = Schema.Struct({
  validator: Schema.String,
  passes: Schema.Boolean,
  baselineLoss: Schema.Number,
  candidateLoss: Schema.Number,
  improvement: Schema.Number,
  wins: Schema.Int,
  batches: Schema.Int
})
export type Verdict = typeof Verdict.Type

/** What a report shows of a recorded verdict: who, and the figures. */
export const verdictOf = (v: EventData<"PoLEvaluated">): Verdict => ({
  validator: v.validator,
  passes: v.passes,
  baselineLoss: v.baselineLoss,
  candidateLoss: v.candidateLoss,
  improvement: v.improvement,
  wins: v.wins,
  batches: v.batches
})

/** A round's decision, as the contributor hears it. */
export const RoundReport = Schema.Struct({
  round: Schema.String,
  contribution: Schema.String,
  target: Schema.String,
  base: Schema.String,
  block: Schema.String,
  accepted: Schema.Boolean,
  reason: Schema.String,
  verdicts: Schema.Array(Verdict),
  /** The learning reward in base units, when accepted. */
  reward: Schema.optional(Schema.String)
})
export type RoundReport = typeof RoundReport.Type
