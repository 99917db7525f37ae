/** A chat asked of the network's router, over the bus or the explorer's HTTP API. */
import { Schema } from "effect"
import { ModelName } from "../model/families/imported-spec.ts"

/** The most tokens one network chat generates: its answer, receipts included, must fit one message. */
export const MAX_NETWORK_TOKENS = 256

export const ChatRequest = Schema.Struct({
  prompt: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(16_384)),
  maxTokens: Schema.Int.pipe(Schema.between(1, MAX_NETWORK_TOKENS)),
  temperature: Schema.Number.pipe(Schema.between(0, 10)),
  seed: Schema.Int,
  /** The model to answer with (default: the one published last). */
  model: Schema.optional(ModelName)
})
export type ChatRequest = typeof ChatRequest.Type
