import { Schema } from "effect"

/** The `blyan-moe` model family: a byte-level MoE decoder; sizes are part of the ledger. */
export const ModelSpec = Schema.Struct({
  family: Schema.Literal("blyan-moe"),
  name: Schema.String.pipe(Schema.minLength(1)),
  vocab: Schema.Literal(256),
  context: Schema.Int.pipe(Schema.positive()),
  dModel: Schema.Int.pipe(Schema.positive()),
  heads: Schema.Int.pipe(Schema.positive()),
  layers: Schema.Int.pipe(Schema.positive()),
  experts: Schema.Int.pipe(Schema.positive()),
  topK: Schema.Int.pipe(Schema.positive()),
  dFF: Schema.Int.pipe(Schema.positive()),
  seed: Schema.Int,
  dtype: Schema.Literal("f32", "f16", "bf16")
})
export type ModelSpec = typeof ModelSpec.Type
