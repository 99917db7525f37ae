/**
 * Generation with an open MoE model: the prompt's token ids fed at once, then one sampled token at
 * a time through the key/value cache (`familySession`), sampled as the built-in model's bytes are
 * (`sampleToken`: greedy at temperature 0, else softmax(logits / T), top-k when given, a seeded
 * PRNG). Rotary positions do not slide: generation ends at the model's context.
 */
import { Effect } from "effect"
import type { Executor } from "../../ports/executor.ts"
import { InvalidModelInput, routeOf, type ExpertCompute, type ModelError } from "../forward.ts"
import { sampleToken, type GeneratedToken } from "../generate.ts"
import type { FamilyGraphs } from "../onnx/families.ts"
import { makePrng } from "../prng.ts"
import type { FamilySpec } from "./config.ts"
import { familySession, type FamilyWeights } from "./forward.ts"

export interface FamilyGenerateOptions {
  readonly maxTokens: number
  /** 0 for greedy decoding. */
  readonly temperature: number
  readonly topK?: number
  readonly seed: number
  /** Stop after producing one of these (included in the output): the tokenizer's end of text. */
  readonly stopTokens?: ReadonlySet<number>
  /** Told of each token as soon as it is chosen, before the next step runs. */
  readonly onToken?: (token: GeneratedToken, index: number) => Effect.Effect<void>
}

export const generateFamily = <E = never>(
  spec: FamilySpec,
  graphs: FamilyGraphs,
  weights: FamilyWeights,
  prompt: ReadonlyArray<number>,
  options: FamilyGenerateOptions,
  compute?: ExpertCompute<E>
): Effect.Effect<{ readonly tokens: ReadonlyArray<number>; readonly steps: ReadonlyArray<GeneratedToken> }, ModelError | E, Executor> =>
  Effect.gen(function* () {
    if (prompt.length === 0) return yield* new InvalidModelInput({ message: "invalid model input: the prompt is empty" })
    if (prompt.length > spec.context) return yield* new InvalidModelInput({ message: `invalid model input: the prompt's ${prompt.length} tokens exceed the model's context of ${spec.context}` })
    const rng = makePrng(options.seed)
    const session = familySession(spec, graphs, weights, compute)
    const steps: GeneratedToken[] = []
    let fed: ReadonlyArray<number> = prompt
    for (let i = 0; i < options.maxTokens && session.position() + fed.length <= spec.context; i++) {
      const { logits, routing } = yield* session.step(fed)
      const token = sampleToken(logits, options.temperature, rng, options.topK)
      const last = fed.length - 1
      const experts = Array.from({ length: routing.layers }, (_, l) =>
        routeOf(routing, l, last).map((e) => {
          const served = routing.servedBy?.[l]?.get(e.expert)
          return served === undefined ? e : { ...e, served }
        })
      )
      const generated = { token, experts }
      steps.push(generated)
      if (options.onToken !== undefined) yield* options.onToken(generated, i)
      if (options.stopTokens?.has(token) === true) break
      fed = [token]
    }
    return { tokens: steps.map((s) => s.token), steps }
  })
