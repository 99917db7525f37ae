import { stageTime, steadyEnd, type DeviceClass, type Problem } from "./problem.ts"

/**
 * Feasibility for a threshold T: can the layers be covered with stages whose time is ≤ T
 * (within a stage budget)? These tables serve both searches (`dense.ts`, `search.ts`).
 *
 * A stage pays one link time per boundary it sends over (`stageTime`), so its time is not
 * monotone in its range: ending at L it sends nothing forward, starting at 0 nothing back. Only
 * the first stage starts at 0 and only the last ends at L, so the facts below hold among the
 * positions a later stage starts from, 1..L.
 *
 * Why the searches are exact:
 * 1. Suffix monotonicity: if layers q..L−1 can be covered by a set of devices, so can q'..L−1
 *    for 1 ≤ q ≤ q' (trim the stage that holds q': it starts at ≥ 1 before and after, so it
 *    sends as much; costs and memory are non-negative). From a position, a stage's feasible ends
 *    are those before L up to a limit (there its time does not decrease in the end), plus L
 *    itself when the whole rest fits: the next position is ≥ 1 either way, so ending as far as it
 *    can ("jump") is never worse, and of two ways to use the same set of devices the one that got
 *    farther is never worse: the whole state is (devices used, farthest position reached). A
 *    stage from q ≥ 1 to an end takes no less time than from q' ≥ q, so jump is non-decreasing
 *    on 1..L; jump[0] may exceed jump[1], but only the empty set stands at 0.
 * 2. Dominance: if two unused devices reach the same position from here and one is no better in
 *    speed, memory and link, using the weaker one now is never worse (swap the two in any
 *    completion: the stronger one fits wherever the weaker did, in no more time).
 * 3. Bounds only cut states that provably cannot finish: every remaining stage starts at or after
 *    the current position and ends at most at its jump, so it holds at most the most layers /
 *    cost / memory its device can take in any window of the remaining suffix; the
 *    (budget-limited) sum of those maxima over the unused devices must cover what remains.
 * Devices with equal speed, memory and link are one class, counted rather than named.
 */
export class Tables {
  readonly jump: Int32Array[] = []
  readonly maxLayers: Int32Array[] = []
  readonly maxCost: Float64Array[] = []
  readonly maxMem: Float64Array[] = []

  constructor(
    readonly pb: Problem,
    readonly threshold: number
  ) {
    for (const k of pb.classes) {
      const j = this.jumps(k)
      // Suffix maxima: the most one device of this class can take in any stage starting at ≥ p.
      const { L, cost, mem } = pb
      const ml = new Int32Array(L + 1)
      const mc = new Float64Array(L + 1)
      const mm = new Float64Array(L + 1)
      for (let p = L - 1; p >= 0; p--) {
        const e2 = j[p]!
        ml[p] = Math.max(ml[p + 1]!, e2 - p)
        mc[p] = Math.max(mc[p + 1]!, cost[e2]! - cost[p]!)
        mm[p] = Math.max(mm[p + 1]!, mem[e2]! - mem[p]!)
      }
      this.jump.push(j)
      this.maxLayers.push(ml)
      this.maxCost.push(mc)
      this.maxMem.push(mm)
    }
  }

  /** jump[i]: the end (exclusive) of the longest stage from i on class k within memory and the threshold. */
  private jumps(k: DeviceClass): Int32Array {
    const { pb, threshold } = this
    const { L } = pb
    const j = new Int32Array(L + 1)
    // e: the farthest end up to `steadyEnd`, past which only L itself (a link cheaper) may fit;
    // non-decreasing in i from 1 on, so it restarts there
    let e = 0
    for (let i = 0; i <= L; i++) {
      if (e < i || i === 1) e = i
      const steady = steadyEnd(pb, k, i)
      while (e < steady && stageTime(pb, i, e + 1, k) <= threshold) e++
      j[i] = steady < k.memReach[i]! && stageTime(pb, i, L, k) <= threshold ? L : e
    }
    return j
  }
}
