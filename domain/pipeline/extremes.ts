/**
 * Largest and smallest of many numbers. `Math.max(...xs)` passes every element as an argument
 * and overflows the stack on large arrays (some 10^5 elements); these loop instead. As with
 * `Math.max`/`Math.min`: −∞ / +∞ for no elements, NaN if any element is NaN, and +0 above −0.
 */
const extreme = (xs: Iterable<number>, none: number, beats: (x: number, m: number) => boolean): number => {
  let m = none
  for (const x of xs) if (beats(x, m) || Number.isNaN(x)) m = x
  return m
}

export const maxOf = (xs: Iterable<number>): number => extreme(xs, Number.NEGATIVE_INFINITY, (x, m) => x > m || (x === 0 && Object.is(m, -0)))

export const minOf = (xs: Iterable<number>): number => extreme(xs, Number.POSITIVE_INFINITY, (x, m) => x < m || (m === 0 && Object.is(x, -0)))
