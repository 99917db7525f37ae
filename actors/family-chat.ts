/**
 * Chat with an imported open MoE model: its blocks loaded from the ledger (each payload checked
 * against its hash), the prompt tokenized by the checkpoint's own tokenizer, and every generated
 * token attributed, per layer, to the expert blocks (`<name>/layerL.expertE`) that produced it.
 */
import { Effect, Either } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { importedModelOf, ModelProjection } from "../domain/projections/model.ts"
import { importedPart } from "../domain/model/families/imported-spec.ts"
import { generateFamily } from "../domain/model/families/generate.ts"
import type { FamilyTensor } from "../domain/model/families/forward.ts"
import { checkpointLayout } from "../domain/model/families/layout.ts"
import { loadTokenizer } from "../domain/model/families/tokenizer.ts"
import { buildFamilyGraphs } from "../domain/model/onnx/families.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import { expertPart } from "../domain/model/spec.ts"
import type { ChatAnswer, ChatOptions } from "./chat.ts"
import { foldStream } from "./command.ts"
import { ModelUnavailable } from "./model-ledger.ts"

export const chatImported = (name: string, prompt: string, options: ChatOptions) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const { state } = yield* foldStream("*", ModelProjection)
    const { spec } = yield* Either.mapLeft(importedModelOf(state, name), (message) => new ModelUnavailable({ message }))
    const blockOf = (part: string) => state.current.get(importedPart(name, part))
    const weights = new Map<string, FamilyTensor>()
    for (const { part, tensors } of checkpointLayout(spec)) {
      const current = blockOf(part)
      if (current === undefined) return yield* new ModelUnavailable({ message: `no block for ${importedPart(name, part)}: import the model again to finish it` })
      const decoded = yield* decodePart(yield* blobs.get(current.payload))
      for (const t of tensors) weights.set(t.checkpointName, decoded.tensors[t.name]!)
    }
    const file = (f: string) => (spec.files[f] === undefined ? Effect.succeed(undefined) : blobs.get(spec.files[f]!))
    const tokenizerJson = yield* file("tokenizer.json")
    if (tokenizerJson === undefined) return yield* new ModelUnavailable({ message: `${name} has no tokenizer.json on the ledger` })
    const tokenizer = yield* Either.mapLeft(loadTokenizer(tokenizerJson, yield* file("tokenizer_config.json"), spec.vocab), (e) => new ModelUnavailable({ message: e.message }))
    const attribute = (experts: ReadonlyArray<ReadonlyArray<{ readonly expert: number; readonly gate: number }>>, token: number) =>
      experts.flatMap((perLayer, layer) => perLayer.map(({ expert, gate }) => ({ token, layer, expert, weight: gate, block: blockOf(expertPart(layer, expert))!.block })))
    const { onToken, ...generation } = options
    const r = yield* generateFamily(spec, buildFamilyGraphs(spec), weights, tokenizer.encode(prompt), {
      ...generation,
      ...(onToken === undefined ? {} : { onToken: (step, index) => onToken({ index, token: step.token, experts: attribute(step.experts, index) }) })
    })
    return { text: tokenizer.decode(r.tokens), tokens: r.tokens, experts: r.steps.flatMap((s, t) => attribute(s.experts, t)) } satisfies ChatAnswer
  })
