import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { segmentUtf8 } from "../../web/utf8.ts"

const strict = new TextDecoder("utf-8", { fatal: true })
const decodes = (bytes: Uint8Array) => {
  try {
    return strict.decode(bytes)
  } catch {
    return undefined
  }
}

describe("the page's UTF-8 segments of an answer's bytes", () => {
  it("partition any bytes, in order: each valid segment is the strict decoding of its bytes, each invalid one a single byte no decoder accepts, shown as its escape", () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const segments = segmentUtf8(bytes, true)
        let at = 0
        for (const s of segments) {
          expect(s.start).toBe(at)
          at += s.length
          const own = bytes.subarray(s.start, s.start + s.length)
          if (s.valid) expect(decodes(own)).toBe(s.text)
          else {
            expect(s.length).toBe(1)
            expect(decodes(own)).toBeUndefined()
            expect(s.text).toBe(`\\x${own[0]!.toString(16).toUpperCase().padStart(2, "0")}`)
          }
        }
        expect(at).toBe(bytes.length)
      }),
      { numRuns: 2000 }
    ))

  it("valid UTF-8 is all characters, the text exactly; cut anywhere while more may come, the cut sequence waits instead of showing as invalid", () =>
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 24 }), fc.nat(), (text, cut) => {
        const bytes = new TextEncoder().encode(text)
        const segments = segmentUtf8(bytes, true)
        expect(segments.every((s) => s.valid)).toBe(true)
        expect(segments.map((s) => s.text).join("")).toBe(text)
        const prefix = bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1))
        const partial = segmentUtf8(prefix, false)
        expect(partial.every((s) => s.valid)).toBe(true)
        expect(text.startsWith(partial.map((s) => s.text).join(""))).toBe(true)
      }),
      { numRuns: 2000 }
    ))

  it("invalid bytes in the middle of text are each kept, visibly", () => {
    const segments = segmentUtf8(Uint8Array.from([0x61, 0xff, 0xc3, 0xa9, 0xe2, 0x82, 0x62, 0x80]), true)
    expect(segments.map((s) => s.text)).toEqual(["a", "\\xFF", "é", "\\xE2", "\\x82", "b", "\\x80"])
  })
})
