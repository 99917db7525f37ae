import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, roundToDtype } from "../../../domain/model/half.ts"

const isNaNBits16 = (h: number, expBits: number, mantMask: number) => (h & expBits) === expBits && (h & mantMask) !== 0

describe("f16", () => {
  it("hand-checked values", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite
      [65519.99, 0x7bff], // rounds down below the halfway point to Inf
      [65520, 0x7c00], // halfway to the next (Inf): ties to even, which is Inf
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even (0)
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 subnormal units: ties to even (2)
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1+2^-10: ties to even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1+2^-10 and 1+2^-9: ties to even
      [0.1, 0x2e66]
    ]
    for (const [x, bits] of cases) expect(f32ToF16Bits(x), `${x}`).toBe(bits)
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true)
  })

  it("every one of the 65536 bit patterns decodes and encodes back to itself (NaNs stay NaN)", () => {
    const wrong: number[] = []
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h)
      if (isNaNBits16(h, 0x7c00, 0x3ff) ? !Number.isNaN(x) : f32ToF16Bits(x) !== h) wrong.push(h)
    }
    expect(wrong).toEqual([])
  })

  it("encoding rounds to a nearest representable value", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -65504, max: 65504 }), (x) => {
        const h = f32ToF16Bits(x)
        const y = f16BitsToF32(h)
        // The neighbours of the result are no closer to x.
        for (const n of [h - 1, h + 1]) {
          if (n < 0 || n > 0xffff || (n & 0x7fff) >= 0x7c00) continue
          if ((n & 0x8000) !== (h & 0x8000) && (h & 0x7fff) !== 0) continue
          expect(Math.abs(f16BitsToF32(n) - x)).toBeGreaterThanOrEqual(Math.abs(y - x))
        }
      }),
      { numRuns: 2000 }
    )
  })
})

describe("bf16", () => {
  it("hand-checked values", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [1, 0x3f80],
      [-1, 0xbf80],
      [3.140625, 0x4049],
      [1 + 2 ** -8, 0x3f80], // halfway: ties to even
      [1 + 3 * 2 ** -8, 0x3f82], // halfway: ties to even (up)
      [Infinity, 0x7f80],
      [3.4028234663852886e38, 0x7f80] // max f32 rounds up to Inf
    ]
    for (const [x, bits] of cases) expect(f32ToBf16Bits(x), `${x}`).toBe(bits)
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true)
  })

  it("every bit pattern round-trips", () => {
    const wrong: number[] = []
    for (let h = 0; h < 65536; h++) {
      const x = bf16BitsToF32(h)
      if (isNaNBits16(h, 0x7f80, 0x7f) ? !Number.isNaN(x) : f32ToBf16Bits(x) !== h) wrong.push(h)
    }
    expect(wrong).toEqual([])
  })

  it("roundToDtype is idempotent and the identity for f32", () => {
    fc.assert(
      fc.property(fc.float32Array({ noNaN: true, maxLength: 32 }), fc.constantFrom("f32" as const, "f16" as const, "bf16" as const), (xs, dt) => {
        const once = roundToDtype(xs, dt)
        expect(Array.from(roundToDtype(once, dt))).toEqual(Array.from(once))
        if (dt === "f32") expect(Array.from(once)).toEqual(Array.from(xs))
      })
    )
  })
})
