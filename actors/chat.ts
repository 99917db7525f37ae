/**
 * Chat with a model of the ledger in this process: the built-in byte model, or an imported one
 * (see family-chat.ts); without a name, the model published last. Every token is attributed to
 * the expert blocks that produced it.
 */
import { Effect, Either } from "effect"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import type { ExpertCompute } from "../domain/model/forward.ts"
import { textBytes } from "../domain/model/data.ts"
import { BUILTIN_MODEL } from "../domain/model/families/imported-spec.ts"
import { expertPart } from "../domain/model/spec.ts"
import { chooseModel, ModelProjection } from "../domain/projections/model.ts"
import { attributedGeneration, type ChatAnswer, type ChatOptions } from "./chat-attribution.ts"
import { foldStream } from "./command.ts"
import { chatFamilyWith, loadFamilyModel } from "./family-chat.ts"
import { loadModelOf, ModelUnavailable, type LoadedModel } from "./model-ledger.ts"

export type { ChatAnswer, ChatOptions, ExpertAttribution, TokenAttribution } from "./chat-attribution.ts"

/** Answer a prompt with the model named `model` (default: the one published last), attributing every token to its expert blocks. */
export const chat = (prompt: string, options: ChatOptions, model?: string) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", ModelProjection)
    const chosen = yield* Either.mapLeft(chooseModel(state, model), (message) => new ModelUnavailable({ message }))
    return chosen.kind === "builtin"
      ? yield* chatWith(yield* loadModelOf(state), prompt, options)
      : yield* chatFamilyWith(yield* loadFamilyModel(state, chosen.name, "every part"), prompt, options)
  })

/** Answer a prompt with the built-in `model`; with `compute`, its experts run where that says (on nodes), each naming its node. */
export const chatWith = <E = never>(model: LoadedModel, prompt: string, options: ChatOptions, compute?: ExpertCompute<E>) =>
  Effect.gen(function* () {
    const runner = yield* ModelRunner
    const r = yield* attributedGeneration(
      options,
      (layer, expert) => model.blocks.get(expertPart(layer, expert))!,
      (generation) => runner.generate(model.weights, textBytes(prompt), generation, compute)
    )
    return { model: BUILTIN_MODEL, text: new TextDecoder().decode(Uint8Array.from(r.tokens)), ...r } satisfies ChatAnswer
  })
