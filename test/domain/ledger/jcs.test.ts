import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { canonicalize, NotCanonicalizable } from "../../../domain/ledger/jcs.ts"

describe("RFC 8785 canonical JSON", () => {
  it("matches the RFC's own examples", () => {
    // RFC 8785 section 3.2.2 (values) and 3.2.3 (sorting by UTF-16 code units).
    const input = { numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001], string: "€$\u000f\nA'B\"\\\\\"/", literals: [null, true, false] }
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    const sorting = { "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis" }
    expect(canonicalize(sorting)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
  })

  it("is independent of key insertion order and round-trips through JSON.parse (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalize(v)
        expect(canonicalize(JSON.parse(c))).toBe(c)
        const reversed = JSON.parse(JSON.stringify(v), (_k, x) =>
          x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).reverse()) : x
        )
        expect(canonicalize(reversed)).toBe(c)
      }),
      { numRuns: 300 }
    )
  })

  it("refuses what JSON cannot represent, naming where", () => {
    expect(() => canonicalize({ a: [1, Number.NaN] })).toThrow(NotCanonicalizable)
    expect(() => canonicalize({ a: Infinity })).toThrow(/\.a/)
    expect(() => canonicalize({ d: new Date(0) })).toThrow(/not a plain object/)
    expect(() => canonicalize({ f: () => 1 })).toThrow(/unsupported type function/)
  })
})
