/**
 * What a chat answers, whatever the model: the generated tokens and, for each token and layer,
 * the experts that produced it, with their gate weights, their blocks and, when nodes computed
 * them, the node and request.
 */
import { Effect } from "effect"
import type { GeneratedToken } from "../domain/model/generate.ts"

export type ChatOptions = {
  readonly maxTokens: number
  readonly temperature: number
  readonly seed: number
  /** Told of each token with its attribution as soon as it is generated. */
  readonly onToken?: (token: TokenAttribution) => Effect.Effect<void>
}

export type ExpertAttribution = {
  readonly token: number
  readonly layer: number
  readonly expert: number
  readonly weight: number
  readonly block: string
  /** The node that ran it and the id of its request, when a node did. */
  readonly node?: string
  readonly request?: string
}

/**
 * One generated token (a byte, for the built-in model) and, per layer, the experts that produced
 * it; for a model with a tokenizer, `text` is what the token adds to the answer's text.
 */
export type TokenAttribution = { readonly index: number; readonly token: number; readonly text?: string; readonly experts: ReadonlyArray<ExpertAttribution> }

export type ChatAnswer = {
  /** The model that answered, by name (`blyan-moe` for the built-in one). */
  readonly model: string
  readonly text: string
  /** The generated tokens in order: bytes for the built-in model, the tokenizer's ids for an imported one. */
  readonly tokens: ReadonlyArray<number>
  /** For each generated token and layer, the experts that produced it, with gate weight and block. */
  readonly experts: ReadonlyArray<ExpertAttribution>
}

/** How a model generates: the options without `onToken`, and a callback told of each step. */
export type Generation = Omit<ChatOptions, "onToken"> & { readonly onToken?: (step: GeneratedToken, index: number) => Effect.Effect<void> }

/**
 * The tokens `run` generates and their attribution, each expert to the block `blockOf` names;
 * `options.onToken` is told of each token as it comes.
 */
export const attributedGeneration = <E, R>(
  options: ChatOptions,
  blockOf: (layer: number, expert: number) => string,
  run: (generation: Generation) => Effect.Effect<{ readonly tokens: ArrayLike<number>; readonly steps: ReadonlyArray<GeneratedToken> }, E, R>
) => {
  const attribute = (step: GeneratedToken, token: number): ReadonlyArray<ExpertAttribution> =>
    step.experts.flatMap((perLayer, layer) =>
      perLayer.map(({ expert, gate, served }) => ({
        token,
        layer,
        expert,
        weight: gate,
        block: blockOf(layer, expert),
        ...(served === undefined ? {} : { node: served.node, request: served.request })
      }))
    )
  const { onToken, ...generation } = options
  return Effect.map(
    run({ ...generation, ...(onToken === undefined ? {} : { onToken: (step, index) => onToken({ index, token: step.token, experts: attribute(step, index) }) }) }),
    (r) => ({ tokens: Array.from(r.tokens), experts: r.steps.flatMap(attribute) })
  )
}
