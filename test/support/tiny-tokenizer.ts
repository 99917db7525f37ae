/**
 * A small byte-level BPE tokenizer in the Hugging Face `tokenizer.json` layout (as Qwen's and
 * GPT-2's are): the 256 byte symbols, a few merges, and one special token. Its vocabulary is
 * 256 + merges + 1 ids; `vocabSize` pads nothing, it only reports that count.
 */

/** GPT-2's printable stand-ins for the 256 bytes (`bytes_to_unicode`). */
const byteSymbols = (): ReadonlyArray<string> => {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
  let next = 256
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++))
}

const MERGES: ReadonlyArray<readonly [string, string]> = [
  ["Ġ", "t"],
  ["h", "e"],
  ["Ġt", "he"],
  ["e", "r"],
  ["Ġ", "a"],
  ["i", "n"]
]

export const END_OF_TEXT = "<|endoftext|>"

/** The tokenizer's files, and how many ids it uses. */
export const tinyTokenizer = () => {
  const vocab: Record<string, number> = {}
  byteSymbols().forEach((s, i) => (vocab[s] = i))
  for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length
  const special = Object.keys(vocab).length
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{ id: special, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: MERGES.map(([a, b]) => `${a} ${b}`) }
  }
  const config = { tokenizer_class: "PreTrainedTokenizerFast", eos_token: END_OF_TEXT, bos_token: null, model_max_length: 4096, clean_up_tokenization_spaces: false }
  return { tokenizer, config, vocabSize: special + 1 }
}
