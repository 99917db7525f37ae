import { stageTime, type DeviceClass, type Problem } from "./problem.ts"

/**
 * Feasibility for a threshold T: can the layers be covered with stages whose time is ≤ T
 * (within a stage budget)? These tables serve both searches (`dense.ts`, `search.ts`).
 *
 * Why the searches are exact:
 * 1. Suffix monotonicity: if layers q..L−1 can be covered by a set of devices, so can q'..L−1
 *    for q' ≥ q (trim the stage that holds q'; costs and memory are non-negative). So once the
 *    device of the next stage is chosen, extending that stage as far as it fits ("jump") is never
 *    worse, and of two ways to use the same set of devices the one that got farther is never
 *    worse: the whole state is (devices used, farthest position reached).
 * 2. Dominance: if two unused devices reach the same position from here and one is no better in
 *    both speed and memory, using the weaker one now is never worse (swap the two in any
 *    completion: the stronger one fits wherever the weaker did).
 * 3. Bounds only cut states that provably cannot finish: every remaining stage starts at or after
 *    the current position, so it holds at most the most layers / cost / memory its device can
 *    take in any window of the remaining suffix; the (budget-limited) sum of those maxima over
 *    the unused devices must cover what remains.
 * Devices with equal speed and memory are one class, counted rather than named.
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
    const j = new Int32Array(pb.L + 1)
    let e = 0
    for (let i = 0; i <= pb.L; i++) {
      if (e < i) e = i
      const limit = k.memReach[i]!
      while (e < limit && stageTime(pb, i, e + 1, k.speed) <= threshold) e++
      j[i] = e
    }
    return j
  }
}
