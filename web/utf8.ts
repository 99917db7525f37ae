/**
 * The answer's bytes as characters for the page. The model's vocabulary is bytes, so an answer may
 * hold bytes that are not UTF-8: each such byte becomes a segment of its own, to be shown as what
 * it is instead of being dropped or merged into a replacement character.
 */

export type Segment = {
  /** The character, or for an invalid byte, its escape (`\xFF`). */
  readonly text: string
  /** Where its bytes start in the answer, and how many. */
  readonly start: number
  readonly length: number
  readonly valid: boolean
}

/** The length of the UTF-8 sequence that starts at `i`, or 0 when none (a stray or overlong byte, a surrogate, past U+10FFFF). */
const sequenceAt = (b: ArrayLike<number>, i: number): number | "incomplete" => {
  const lead = b[i]!
  if (lead < 0x80) return 1
  const [n, lo, hi] = lead >= 0xc2 && lead <= 0xdf ? [2, 0x80, 0xbf] : lead === 0xe0 ? [3, 0xa0, 0xbf] : lead === 0xed ? [3, 0x80, 0x9f] : lead >= 0xe1 && lead <= 0xef ? [3, 0x80, 0xbf] : lead === 0xf0 ? [4, 0x90, 0xbf] : lead === 0xf4 ? [4, 0x80, 0x8f] : lead >= 0xf1 && lead <= 0xf3 ? [4, 0x80, 0xbf] : [0, 0, 0]
  for (let k = 1; k < n; k++) {
    if (i + k >= b.length) return "incomplete"
    const c = b[i + k]!
    if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return 0
  }
  return n
}

/** A byte as the page shows one it cannot show as a character. */
export const byteEscape = (byte: number) => `\\x${byte.toString(16).toUpperCase().padStart(2, "0")}`

/**
 * Split `bytes` into characters and invalid bytes. While more bytes may come (`final` false), a
 * sequence cut short at the end is left out, to be completed by them.
 */
export const segmentUtf8 = (bytes: ArrayLike<number>, final: boolean): ReadonlyArray<Segment> => {
  const out: Segment[] = []
  for (let i = 0; i < bytes.length; ) {
    const n = sequenceAt(bytes, i)
    if (n === "incomplete" && !final) break
    if (n === 0 || n === "incomplete") {
      out.push({ text: byteEscape(bytes[i]!), start: i, length: 1, valid: false })
      i += 1
      continue
    }
    let cp = n === 1 ? bytes[i]! : bytes[i]! & (0xff >> (n + 1))
    for (let k = 1; k < n; k++) cp = (cp << 6) | (bytes[i + k]! & 0x3f)
    out.push({ text: String.fromCodePoint(cp), start: i, length: n, valid: true })
    i += n
  }
  return out
}
