import { stageTime, steadyEnd, type DeviceClass, type Problem } from "./problem.ts"
import type { Tables } from "./tables.ts"

// Search over candidate bottlenecks, and the final placement of stage boundaries.

/** The bottleneck of a class sequence walked with maximal stages at the tables' threshold. */
export const walk = (t: Tables, seq: ReadonlyArray<number>): number => {
  const { pb } = t
  let p = 0
  let worst = 0
  for (const c of seq) {
    const q = t.jump[c]![p]!
    worst = Math.max(worst, stageTime(pb, p, q, pb.classes[c]!))
    p = q
  }
  return worst
}

/**
 * Visits the candidate stages (every stage that fits memory) as runs of ends first..last from a
 * start i on a class, along which the time does not decrease: the row of i up to `steadyEnd`,
 * and the end L alone where ending there saves a link.
 */
const forEachRun = (pb: Problem, visit: (k: DeviceClass, i: number, first: number, last: number) => void): void => {
  for (const k of pb.classes) {
    for (let i = 0; i < pb.L; i++) {
      const top = k.memReach[i]!
      const steady = steadyEnd(pb, k, i)
      if (steady > i) visit(k, i, i + 1, steady)
      if (top > steady) visit(k, i, top, top)
    }
  }
}

/**
 * Candidate bottlenecks are the times of every stage that fits memory. Each run is sorted in the
 * end, so counting the candidates strictly between lo and hi, and picking the weighted median of
 * the run medians as a pivot, needs only binary searches: every probe removes at least a quarter
 * of the candidates left.
 */
export const pivotBetween = (pb: Problem, lo: number, hi: number): number | undefined => {
  const meds: Array<{ v: number; w: number }> = []
  let total = 0
  forEachRun(pb, (k, i, first, last) => {
    // first e in [first, last] with time > lo, and first with time ≥ hi
    let a = first
    let b = last + 1
    while (a < b) {
      const m = (a + b) >> 1
      if (stageTime(pb, i, m, k) > lo) b = m
      else a = m + 1
    }
    const from = a
    b = last + 1
    while (a < b) {
      const m = (a + b) >> 1
      if (stageTime(pb, i, m, k) >= hi) b = m
      else a = m + 1
    }
    const count = a - from
    if (count > 0) {
      meds.push({ v: stageTime(pb, i, (from + a - 1) >> 1, k), w: count })
      total += count
    }
  })
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
 * compute alone (links only add time) of the whole chain spread over every device at once, and
 * of the costliest layer on the fastest device whose memory holds it.
 */
export const lowerBound = (pb: Problem, lo: number): number => {
  let above = Number.POSITIVE_INFINITY
  let spread = 0
  for (const k of pb.classes) spread += k.speed * k.members.length
  forEachRun(pb, (k, i, first, last) => {
    if (stageTime(pb, i, last, k) <= lo) return
    let a = first
    let b = last
    while (a < b) {
      const m = (a + b) >> 1
      if (stageTime(pb, i, m, k) > lo) b = m
      else a = m + 1
    }
    above = Math.min(above, stageTime(pb, i, a, k))
  })
  let layer = 0
  for (let i = 0; i < pb.L; i++) {
    let fastest = 0
    for (const k of pb.classes) if (k.memReach[i]! > i) fastest = Math.max(fastest, k.speed)
    layer = Math.max(layer, stageTime(pb, i, i + 1, { speed: fastest, link: 0 }))
  }
  const bounds = [stageTime(pb, 0, pb.L, { speed: spread, link: 0 }), layer, ...(above === Number.POSITIVE_INFINITY ? [] : [above])]
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

