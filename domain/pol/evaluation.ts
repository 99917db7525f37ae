/**
 * A validator's measurement of a candidate against its base: both evaluated on the same held-out
 * batches (paired), drawn with a seed nobody could know when the candidate was made. The
 * candidate passes only if it lowers the mean loss by at least `epsilon` (relative) and wins on at
 * least `minWinShare` of the batches: a mean carried by a few lucky batches is not an improvement.
 */
import { hashString } from "../model/prng.ts"

export type PoLSettings = {
  /** Least relative improvement of the mean held-out loss (0.01: 1%). */
  readonly epsilon: number
  /** Least share of batches on which the candidate's loss is lower. */
  readonly minWinShare: number
  /** Batches each validator draws. */
  readonly batches: number
}

export const defaultPoLSettings: PoLSettings = { epsilon: 0.01, minWinShare: 0.75, batches: 12 }

/** What a validator measured: the mean losses, the relative improvement and the batches won. */
export type Figures = {
  readonly baselineLoss: number
  readonly candidateLoss: number
  /** (baseline − candidate) / baseline. */
  readonly improvement: number
  readonly wins: number
  readonly batches: number
}

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length

/** The figures of paired per-batch losses (same batches, same order). */
export const figuresOf = (baseline: ReadonlyArray<number>, candidate: ReadonlyArray<number>): Figures => {
  if (baseline.length === 0 || baseline.length !== candidate.length) throw new RangeError(`paired losses needed, got ${baseline.length} and ${candidate.length}`)
  const baselineLoss = mean(baseline)
  const candidateLoss = mean(candidate)
  return {
    baselineLoss,
    candidateLoss,
    improvement: (baselineLoss - candidateLoss) / baselineLoss,
    wins: baseline.filter((b, i) => candidate[i]! < b).length,
    batches: baseline.length
  }
}

/** Why the figures do not show an improvement, if they do not. */
export const shortfall = (f: Figures, s: PoLSettings): string | undefined => {
  if (!Number.isFinite(f.baselineLoss) || !Number.isFinite(f.candidateLoss)) return "a loss is not finite"
  if (f.improvement < s.epsilon) return `improvement ${(f.improvement * 100).toFixed(2)}% is below ${(s.epsilon * 100).toFixed(2)}%`
  if (f.wins < s.minWinShare * f.batches) return `better on ${f.wins} of ${f.batches} batches, fewer than ${Math.ceil(s.minWinShare * f.batches)}`
  return undefined
}

/**
 * The seed of a round's evaluation batches: from the round, the candidate and the log's head when
 * the round closed to contributions, so no contributor can know the batches in advance.
 */
export const evaluationSeed = (round: string, candidate: string, head: string): number => hashString(`pol|${round}|${candidate}|${head}`)
