import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { loadTokenizer } from "../../../../domain/model/families/tokenizer.ts"
import { END_OF_TEXT, tinyTokenizer } from "../../../support/tiny-tokenizer.ts"

const bytes = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v))
const tiny = tinyTokenizer()
const load = (vocab = tiny.vocabSize, json: unknown = tiny.tokenizer, config: unknown = tiny.config) => loadTokenizer(bytes(json), config === undefined ? undefined : bytes(config), vocab)

describe("a checkpoint's tokenizer", () => {
  it("encodes with its merges and special tokens, every id inside the vocabulary, and decodes back to the text", () => {
    const t = Either.getOrThrow(load())
    expect(t.size).toBe(tiny.vocabSize)
    const ids = t.encode("the theater")
    // "the" → t + he; " theater" → Ġthe + a + t + er
    expect(ids).toEqual([116, 257, 258, 97, 116, 259])
    expect(t.encode(`a${END_OF_TEXT}`)).toEqual([97, tiny.vocabSize - 1])
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (text) => {
        const encoded = t.encode(text)
        for (const id of encoded) expect(id).toBeLessThan(tiny.vocabSize)
        expect(t.decode(encoded)).toBe(text)
      })
    )
  })

  it("fits a model whose vocabulary is larger (padded), and is refused, naming why, by one too small, or when not JSON", () => {
    expect(Either.isRight(load(tiny.vocabSize + 64))).toBe(true)
    const cases: ReadonlyArray<readonly [Either.Either<unknown, { message: string }>, string]> = [
      [load(tiny.vocabSize - 1), `tokenizer.json uses ${tiny.vocabSize} ids, more than the model's vocabulary of ${tiny.vocabSize - 1}`],
      [loadTokenizer(bytes("{not json"), undefined, 1000), "tokenizer.json is not a JSON object"],
      [load(1000, tiny.tokenizer, "[1]"), "tokenizer_config.json is not a JSON object"],
      [load(1000, { ...tiny.tokenizer, model: { type: "BPE", vocab: {}, merges: [] }, added_tokens: [] }), "tokenizer.json has no vocabulary"]
    ]
    for (const [r, message] of cases) expect(Either.isLeft(r) && r.left.message).toBe(message)
  })
})
