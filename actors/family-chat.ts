/**
 * Chat with an imported open MoE model: its blocks loaded from the ledger (each payload checked
 * against its hash), the prompt tokenized by the checkpoint's own tokenizer, and every generated
 * token attributed, per layer, to the expert blocks (`<name>/layerL.expertE`) that produced it.
 * Its experts run here, or where an `ExpertCompute` says (on nodes); then only the other parts
 * are loaded.
 */
import { Effect, Either } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { importedModelOf, type ModelState } from "../domain/projections/model.ts"
import type { ExpertCompute } from "../domain/model/forward.ts"
import type { FamilySpec } from "../domain/model/families/config.ts"
import { importedPart } from "../domain/model/families/imported-spec.ts"
import { generateFamily } from "../domain/model/families/generate.ts"
import type { FamilyTensor } from "../domain/model/families/forward.ts"
import { checkpointLayout } from "../domain/model/families/layout.ts"
import { loadTokenizer, type TextTokenizer } from "../domain/model/families/tokenizer.ts"
import { buildFamilyGraphs, type FamilyGraphs } from "../domain/model/onnx/families.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import { expertPart, parsePartName } from "../domain/model/spec.ts"
import { attributedGeneration, type ChatAnswer, type ChatOptions } from "./chat-attribution.ts"
import { ModelUnavailable } from "./model-ledger.ts"

export type FamilyModel = {
  readonly name: string
  readonly spec: FamilySpec
  readonly graphs: FamilyGraphs
  /** The loaded tensors by checkpoint name. */
  readonly weights: ReadonlyMap<string, FamilyTensor>
  /** The block of each of the model's parts (`layer0.expert1`, …) as loaded. */
  readonly blocks: ReadonlyMap<string, string>
  readonly tokenizer: TextTokenizer
}

/** Imported model `name` as `state` says it is now; with "all but experts", its experts are left to the nodes. */
export const loadFamilyModel = (state: ModelState, name: string, parts: "every part" | "all but experts") =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const { spec } = yield* Either.mapLeft(importedModelOf(state, name), (message) => new ModelUnavailable({ message }))
    const weights = new Map<string, FamilyTensor>()
    const blocks = new Map<string, string>()
    for (const { part, tensors } of checkpointLayout(spec)) {
      const current = state.current.get(importedPart(name, part))
      if (current === undefined) return yield* new ModelUnavailable({ message: `no block for ${importedPart(name, part)}: import the model again to finish it` })
      blocks.set(part, current.block)
      if (parts === "all but experts" && parsePartName(part)?.kind === "expert") continue
      const decoded = yield* decodePart(yield* blobs.get(current.payload))
      for (const t of tensors) weights.set(t.checkpointName, decoded.tensors[t.name]!)
    }
    const file = (f: string) => (spec.files[f] === undefined ? Effect.succeed(undefined) : blobs.get(spec.files[f]!))
    const tokenizerJson = yield* file("tokenizer.json")
    if (tokenizerJson === undefined) return yield* new ModelUnavailable({ message: `${name} has no tokenizer.json on the ledger` })
    const tokenizer = yield* Either.mapLeft(loadTokenizer(tokenizerJson, yield* file("tokenizer_config.json"), spec.vocab), (e) => new ModelUnavailable({ message: e.message }))
    return { name, spec, graphs: buildFamilyGraphs(spec), weights, blocks, tokenizer } satisfies FamilyModel
  })

/**
 * Each token told with the text it adds: the decoded answer so far less what was told before. A
 * token ending in the middle of a character adds nothing until the character is whole.
 */
const withText = (tokenizer: TextTokenizer, options: ChatOptions): ChatOptions => {
  const { onToken } = options
  if (onToken === undefined) return options
  const tokens: number[] = []
  let told = ""
  return {
    ...options,
    onToken: (t) => {
      tokens.push(t.token)
      const now = tokenizer.decode(tokens)
      const text = now.endsWith("\uFFFD") || !now.startsWith(told) ? "" : now.slice(told.length)
      told += text
      return onToken({ ...t, text })
    }
  }
}

/** Answer a prompt with `model`; with `compute`, its experts run where that says (on nodes), each naming its node. */
export const chatFamilyWith = <E = never>(model: FamilyModel, prompt: string, options: ChatOptions, compute?: ExpertCompute<E>) =>
  Effect.gen(function* () {
    const r = yield* attributedGeneration(
      withText(model.tokenizer, options),
      (layer, expert) => model.blocks.get(expertPart(layer, expert))!,
      (generation) => generateFamily(model.spec, model.graphs, model.weights, model.tokenizer.encode(prompt), generation, compute)
    )
    return { model: model.name, text: model.tokenizer.decode(r.tokens), ...r } satisfies ChatAnswer
  })
