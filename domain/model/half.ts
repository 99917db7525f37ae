/**
 * IEEE 754 half (f16) and bfloat16 conversions to and from f32, rounding to nearest, ties to even.
 * Used by the safetensors codec and to keep f16/bf16 models' weights exactly representable.
 */
import type { DType } from "./tensor.ts"

const scratchF32 = new Float32Array(1)
const scratchU32 = new Uint32Array(scratchF32.buffer)

const bitsOf = (x: number): number => {
  scratchF32[0] = x
  return scratchU32[0]!
}
const fromBits = (b: number): number => {
  scratchU32[0] = b >>> 0
  return scratchF32[0]!
}

/** f32 value → f16 bit pattern. Overflow goes to ±Inf, NaN stays NaN (quiet). */
export const f32ToF16Bits = (x: number): number => {
  const b = bitsOf(x)
  const sign = (b >>> 16) & 0x8000
  const exp = (b >>> 23) & 0xff
  const mant = b & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign // below half the smallest subnormal: rounds to ±0
    const m = mant | 0x800000
    const shift = 14 - e
    let h = m >>> shift
    const rem = m & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++
    return sign | h
  }
  let h = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++
  return sign | h
}

/** f16 bit pattern → its exact f32 value. */
export const f16BitsToF32 = (h: number): number => {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN
  return fromBits(((h & 0x8000) << 16) | ((exp - 15 + 127) << 23) | (mant << 13))
}

/** f32 value → bf16 bit pattern (the top 16 bits, rounded to nearest even). */
export const f32ToBf16Bits = (x: number): number => {
  const b = bitsOf(x)
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40
  return ((b + 0x7fff + ((b >>> 16) & 1)) / 65536) & 0xffff
}

export const bf16BitsToF32 = (h: number): number => fromBits((h & 0xffff) << 16)

/** Each element of `src` converted by `f` into a new array made by `make`. */
const convert = <S extends ArrayLike<number>, T extends { [i: number]: number }>(src: S, make: (n: number) => T, f: (x: number) => number): T => {
  const out = make(src.length)
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]!)
  return out
}

export const encodeF16 = (data: Float32Array): Uint16Array => convert(data, (n) => new Uint16Array(n), f32ToF16Bits)
export const decodeF16 = (bits: Uint16Array): Float32Array => convert(bits, (n) => new Float32Array(n), f16BitsToF32)
export const encodeBf16 = (data: Float32Array): Uint16Array => convert(data, (n) => new Uint16Array(n), f32ToBf16Bits)
export const decodeBf16 = (bits: Uint16Array): Float32Array => convert(bits, (n) => new Float32Array(n), bf16BitsToF32)

/** The values `data` takes once stored as `dtype` (a copy; f32 is returned as a copy too). */
export const roundToDtype = (data: Float32Array, dtype: DType): Float32Array =>
  dtype === "f16" ? decodeF16(encodeF16(data)) : dtype === "bf16" ? decodeBf16(encodeBf16(data)) : Float32Array.from(data)
