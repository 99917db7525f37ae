/**
 * Whether two answers for the same expert, block and input agree: the same graph on another
 * device or kernel may round differently, so outputs agree within a tolerance relative to their
 * size; anything beyond it is a different computation.
 */

/** Largest allowed |a − b| / (1 + max(|a|, |b|)), elementwise. */
export const AGREEMENT_TOLERANCE = 1e-3

/** How two outputs differ, in words, if they differ beyond the tolerance (or in length). */
export const disagreement = (a: ArrayLike<number>, b: ArrayLike<number>, tolerance = AGREEMENT_TOLERANCE): string | undefined => {
  if (a.length !== b.length) return `${a.length} values against ${b.length}`
  let worst = 0
  let at = -1
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    const d = Math.abs(x - y) / (1 + Math.max(Math.abs(x), Math.abs(y)))
    // NaN compares false: caught here as the worst possible difference.
    if (!(d <= worst)) {
      worst = Number.isNaN(d) ? Infinity : d
      at = i
    }
  }
  return worst > tolerance ? `element ${at} differs by ${worst.toExponential(2)} (relative), beyond ${tolerance}` : undefined
}
