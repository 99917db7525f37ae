/**
 * Deterministic pseudo-random numbers for weight init, sampling and data order: xoshiro128**
 * seeded through splitmix32. Only 32-bit integer arithmetic, so every platform produces the same
 * stream for the same seed (no Math.random, no transcendental functions).
 */

/** FNV-1a over the UTF-16 code units of a string: a stable stream id for a name. */
export const hashString = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

const splitmix32 = (state: { s: number }): number => {
  state.s = (state.s + 0x9e3779b9) | 0
  let z = state.s
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

export interface Prng {
  /** Uniform integer in [0, 2^32). */
  readonly nextU32: () => number
  /** Uniform float in [0, 1) with 32 bits of randomness. */
  readonly next: () => number
  /** Uniform float in [lo, hi). */
  readonly uniform: (lo: number, hi: number) => number
  /** Uniform integer in [0, n) (n ≤ 2^32), without modulo bias. */
  readonly int: (n: number) => number
}

/**
 * A generator for `seed` (any safe integer) and an optional `stream` (e.g. `hashString(partName)`),
 * so independent consumers draw independent streams from one model seed.
 */
export const makePrng = (seed: number, stream = 0): Prng => {
  const lo = seed >>> 0
  const hi = Math.floor(seed / 2 ** 32) >>> 0
  const st = { s: lo ^ Math.imul(hi, 0x27d4eb2f) ^ Math.imul(stream >>> 0, 0x165667b1) }
  const nextU32 = xoshiro128ss([splitmix32(st), splitmix32(st), splitmix32(st), splitmix32(st)])
  const next = () => nextU32() / 4294967296
  const int = (n: number): number => {
    if (!(n >= 1 && n <= 4294967296)) throw new RangeError(`int(n): n must be in [1, 2^32], got ${n}`)
    const limit = 4294967296 - (4294967296 % n)
    for (;;) {
      const x = nextU32()
      if (x < limit) return x % n
    }
  }
  return { nextU32, next, uniform: (lo, hi) => lo + (hi - lo) * next(), int }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k))

/** The xoshiro128** generator (Blackman & Vigna) from a 128-bit state; returns unsigned 32-bit outputs. */
export const xoshiro128ss = (state: readonly [number, number, number, number]): (() => number) => {
  let [a, b, c, d] = state
  if ((a | b | c | d) === 0) a = 1 // the all-zero state is a fixed point
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = rotl(d, 11)
    return r
  }
}
