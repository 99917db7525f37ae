/**
 * A checkpoint's own tokenizer, from its `tokenizer.json` (and `tokenizer_config.json`), run by
 * Hugging Face's tokenizers.js: text to the model's token ids and back. Refused when its files
 * are not JSON, the library cannot build it, or it uses ids the model's vocabulary lacks (the
 * embedding would have no row for them).
 */
import { Tokenizer } from "@huggingface/tokenizers"
import { Either, Schema } from "effect"

export class TokenizerRefused extends Schema.TaggedError<TokenizerRefused>()("TokenizerRefused", { message: Schema.String }) {}

export type TextTokenizer = {
  /** Ids used: one more than the largest id of the vocabulary and the added tokens. */
  readonly size: number
  readonly encode: (text: string) => ReadonlyArray<number>
  readonly decode: (ids: ReadonlyArray<number>) => string
}

const parse = (bytes: Uint8Array, file: string): Either.Either<Record<string, unknown>, TokenizerRefused> => {
  try {
    const v: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return Either.right(v as Record<string, unknown>)
  } catch {
    // reported below
  }
  return Either.left(new TokenizerRefused({ message: `${file} is not a JSON object` }))
}

/** Every id the tokenizer can produce: its model's vocabulary (BPE and WordLevel: token → id; Unigram: a list) and its added tokens. */
const idsOf = (json: Record<string, unknown>): ReadonlyArray<number> => {
  const model = json.model as { vocab?: unknown } | undefined
  const vocab = model?.vocab
  const fromModel = Array.isArray(vocab) ? vocab.map((_, i) => i) : typeof vocab === "object" && vocab !== null ? Object.values(vocab) : []
  const added = Array.isArray(json.added_tokens) ? json.added_tokens.map((t: { id?: unknown }) => t.id) : []
  return [...fromModel, ...added].filter((id): id is number => typeof id === "number")
}

/** The tokenizer of `tokenizerJson`, for a model of `vocab` ids. */
export const loadTokenizer = (tokenizerJson: Uint8Array, configJson: Uint8Array | undefined, vocab: number): Either.Either<TextTokenizer, TokenizerRefused> =>
  Either.gen(function* () {
    const json = yield* parse(tokenizerJson, "tokenizer.json")
    const config = configJson === undefined ? {} : yield* parse(configJson, "tokenizer_config.json")
    const ids = idsOf(json)
    if (ids.length === 0) return yield* Either.left(new TokenizerRefused({ message: "tokenizer.json has no vocabulary" }))
    if (ids.some((id) => !Number.isSafeInteger(id) || id < 0)) return yield* Either.left(new TokenizerRefused({ message: "tokenizer.json has an id that is not a non-negative integer" }))
    const size = Math.max(...ids) + 1
    if (size > vocab) return yield* Either.left(new TokenizerRefused({ message: `tokenizer.json uses ${size} ids, more than the model's vocabulary of ${vocab}` }))
    const tokenizer = yield* Either.try({
      try: () => new Tokenizer(json as never, config as never),
      catch: (e) => new TokenizerRefused({ message: `tokenizer.json cannot be loaded: ${e instanceof Error ? e.message : String(e)}` })
    })
    return {
      size,
      encode: (text: string) => tokenizer.encode(text).ids,
      // The library refuses an empty list; no ids are no text.
      decode: (tokens: ReadonlyArray<number>) => (tokens.length === 0 ? "" : tokenizer.decode([...tokens]))
    }
  })
