import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { maxOf, minOf } from "../../../domain/pipeline/extremes.ts"

const HUGE = 200_000

describe("maxOf and minOf", () => {
  it("agree with Math.max and Math.min wherever those work, including no elements, ±0, ±∞ and NaN", () => {
    fc.assert(
      fc.property(fc.array(fc.double()), (xs) => {
        expect(maxOf(xs)).toBe(Math.max(...xs))
        expect(minOf(xs)).toBe(Math.min(...xs))
      }),
      { numRuns: 2_000 }
    )
    for (const xs of [[], [-0, 0], [0, -0], [1, Number.NaN, 2], [Number.NEGATIVE_INFINITY], [Number.POSITIVE_INFINITY, -1]]) {
      expect(maxOf(xs)).toBe(Math.max(...xs))
      expect(minOf(xs)).toBe(Math.min(...xs))
    }
  })

  it(`take ${HUGE} elements, where spreading them into Math.max overflows the stack`, () => {
    const xs = Array.from({ length: HUGE }, (_, i) => (i * 7919) % HUGE)
    expect(() => Math.max(...xs)).toThrow(RangeError)
    expect(maxOf(xs)).toBe(HUGE - 1)
    expect(minOf(xs)).toBe(0)
    expect(maxOf(new Float64Array(xs))).toBe(HUGE - 1)
  })
})
