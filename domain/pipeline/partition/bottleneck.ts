import { stageTime, type Problem } from "./problem.ts"
import type { Tables } from "./tables.ts"

// Search over candidate bottlenecks, and the final placement of stage boundaries.

/** The bottleneck of a class sequence walked with maximal stages at the tables' threshold. */
export const walk = (t: Tables, seq: ReadonlyArray<number>): number => {
  const { pb } = t
  let p = 0
  let worst = 0
  for (const c of seq) {
    const q = t.jump[c]![p]!
    worst = Math.max(worst, stageTime(pb, p, q, pb.classes[c]!.speed))
    p = q
  }
  return worst
}

/**
 * Candidate bottlenecks are the times of every stage that fits memory: (cost of i..e−1)/speed of
 * a class. Each (class, start) row is sorted in e, so counting the candidates strictly between
 * lo and hi, and picking the weighted median of the row medians as a pivot, needs only binary
 * searches: every probe removes at least a quarter of the candidates left.
 */
export const pivotBetween = (pb: Problem, lo: number, hi: number): number | undefined => {
  const meds: Array<{ v: number; w: number }> = []
  let total = 0
  for (const k of pb.classes) {
    for (let i = 0; i < pb.L; i++) {
      const top = k.memReach[i]!
      if (top <= i) continue
      // first e in (i, top] with time > lo, and first with time ≥ hi
      let a = i + 1
      let b = top + 1
      while (a < b) {
        const m = (a + b) >> 1
        if (stageTime(pb, i, m, k.speed) > lo) b = m
        else a = m + 1
      }
      const from = a
      b = top + 1
      while (a < b) {
        const m = (a + b) >> 1
        if (stageTime(pb, i, m, k.speed) >= hi) b = m
        else a = m + 1
      }
      const count = a - from
      if (count > 0) {
        meds.push({ v: stageTime(pb, i, (from + a - 1) >> 1, k.speed), w: count })
        total += count
      }
    }
  }
  if (total === 0) return undefined
  meds.sort((x, y) => x.v - y.v)
  let acc = 0
  for (const m of meds) {
    acc += m.w
    if (2 * acc >= total) return m.v
  }
  return meds[meds.length - 1]!.v
}

/**
 * A bound no plan beats, given that every threshold up to `lo` was proven infeasible: the
 * smallest candidate stage time above `lo` (the optimum is a candidate), and in any case the
 * whole chain spread over every device at once, and the costliest layer on the fastest device
 * whose memory holds it.
 */
export const lowerBound = (pb: Problem, lo: number): number => {
  let above = Number.POSITIVE_INFINITY
  let spread = 0
  for (const k of pb.classes) {
    spread += k.speed * k.members.length
    for (let i = 0; i < pb.L; i++) {
      const top = k.memReach[i]!
      if (top <= i || stageTime(pb, i, top, k.speed) <= lo) continue
      let a = i + 1
      let b = top
      while (a < b) {
        const m = (a + b) >> 1
        if (stageTime(pb, i, m, k.speed) > lo) b = m
        else a = m + 1
      }
      above = Math.min(above, stageTime(pb, i, a, k.speed))
    }
  }
  let layer = 0
  for (let i = 0; i < pb.L; i++) {
    let fastest = 0
    for (const k of pb.classes) if (k.memReach[i]! > i) fastest = Math.max(fastest, k.speed)
    layer = Math.max(layer, stageTime(pb, i, i + 1, fastest))
  }
  const bounds = [stageTime(pb, 0, pb.L, spread), layer, ...(above === Number.POSITIVE_INFINITY ? [] : [above])]
  return Math.max(...bounds)
}

/** Given the device order, make every stage end as early as the later devices still allow. */
export const earliestBoundaries = (t: Tables, seq: ReadonlyArray<number>): number[] => {
  const { pb, jump } = t
  const ends: number[] = []
  const reaches = (from: number, j: number): boolean => {
    let p = from
    for (let k = j; k < seq.length; k++) {
      const q = jump[seq[k]!]![p]!
      if (q === p) return false // every stage must hold at least one layer
      p = q
    }
    return p === pb.L
  }
  let start = 0
  for (let j = 0; j < seq.length; j++) {
    // smallest end that still lets the remaining devices finish; monotone in the end
    let a = start + 1
    let b = jump[seq[j]!]![start]!
    while (a < b) {
      const m = (a + b) >> 1
      if (reaches(m, j + 1)) b = m
      else a = m + 1
    }
    ends.push(a - 1)
    start = a
  }
  return ends
}

