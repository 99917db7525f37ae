import { radices, type Budget } from "./problem.ts"
import type { Tables } from "./tables.ts"

/** Entries of the search's memo before it is dropped: a memo only saves work, so dropping it is always sound. */
const MEMO_LIMIT = 1 << 22

/**
 * Depth-first search over device orders with the same facts plus bounds and a memo: for a set of
 * used devices, the farthest position from which finishing was proven impossible (with this
 * call's budget); every nearer position is then dead too (fact 1: a non-empty set stands at a
 * position ≥ 1, the empty set only at 0). Along one path the used set only grows, so a set met
 * again was fully explored before. In lexicographic mode the devices are tried in index order,
 * so the first complete sequence found is the lexicographically smallest.
 */
export class Search {
  private readonly C: number
  private readonly used: Int32Array
  private readonly radix: Float64Array
  private readonly numericKeys: boolean
  private readonly dead = new Map<number | string, number>()
  private readonly tolCost: number
  private readonly tolMem: number
  private readonly path: number[] = []
  private lexOrder = false
  private code = 0

  constructor(
    private readonly t: Tables,
    private readonly budget: Budget
  ) {
    const { pb } = t
    this.C = pb.classes.length
    this.used = new Int32Array(this.C)
    const { radix, states } = radices(pb)
    this.radix = radix
    this.numericKeys = states <= Number.MAX_SAFE_INTEGER
    // Bound checks compare float sums: allow for rounding so a bound never cuts a feasible state.
    this.tolCost = 1e-9 * Math.abs(pb.cost[pb.L]!)
    this.tolMem = 1e-9 * Math.abs(pb.mem[pb.L]!)
  }

  private key(): number | string {
    return this.numericKeys ? this.code : this.used.join(",")
  }

  /** Sum of the `budget` largest values over the unused devices (each class counted per unused member). */
  private topSum(values: ReadonlyArray<Int32Array | Float64Array>, p: number, budget: number, unused: number): number {
    const classes = this.t.pb.classes
    if (budget >= unused) {
      let s = 0
      for (let c = 0; c < this.C; c++) s += (classes[c]!.members.length - this.used[c]!) * values[c]![p]!
      return s
    }
    const order: number[] = []
    for (let c = 0; c < this.C; c++) if (classes[c]!.members.length > this.used[c]!) order.push(c)
    order.sort((a, b) => values[b]![p]! - values[a]![p]!)
    let s = 0
    let left = budget
    for (const c of order) {
      if (left === 0) break
      const take = Math.min(left, classes[c]!.members.length - this.used[c]!)
      s += take * values[c]![p]!
      left -= take
    }
    return s
  }

  private hopeless(p: number, budget: number, unused: number): boolean {
    const { L, cost, mem } = this.t.pb
    const t = this.t
    return (
      this.topSum(t.maxLayers, p, budget, unused) < L - p ||
      this.topSum(t.maxCost, p, budget, unused) < cost[L]! - cost[p]! - this.tolCost ||
      this.topSum(t.maxMem, p, budget, unused) < mem[L]! - mem[p]! - this.tolMem
    )
  }

  private remember(p: number): void {
    if (this.dead.size >= MEMO_LIMIT) this.dead.clear()
    this.dead.set(this.key(), p)
  }

  private isDead(p: number): boolean {
    const d = this.dead.get(this.key())
    return d !== undefined && d >= p
  }

  private dfs(p: number, budget: number, unused: number): boolean {
    const { pb, jump } = this.t
    const { L, classes } = pb
    this.budget.spend()
    if (p === L) return true
    if (budget === 0 || unused === 0 || this.isDead(p)) return false
    if (!this.hopeless(p, budget, unused)) {
      const cands: number[] = []
      for (let c = 0; c < this.C; c++) if (classes[c]!.members.length > this.used[c]! && jump[c]![p]! > p) cands.push(c)
      if (this.lexOrder) cands.sort((a, b) => classes[a]!.members[this.used[a]!]! - classes[b]!.members[this.used[b]!]!)
      else
        cands.sort(
          (a, b) =>
            jump[b]![p]! - jump[a]![p]! ||
            classes[a]!.speed - classes[b]!.speed ||
            classes[a]!.memory - classes[b]!.memory ||
            classes[b]!.link - classes[a]!.link ||
            a - b
        )
      for (const c of cands) {
        const q = jump[c]![p]!
        if (this.dominated(c, q, p, cands)) continue
        this.used[c]!++
        this.code += this.radix[c]!
        this.path.push(c)
        const ok = this.dfs(q, budget - 1, unused - 1)
        this.used[c]!--
        this.code -= this.radix[c]!
        if (ok) return true
        this.path.pop()
      }
    }
    this.remember(p)
    return false
  }

  /**
   * Is choosing class c here no better than choosing a weaker class w (no faster, no larger, no
   * quicker link) that reaches the same q (fact 2)? In free order the weaker one is simply tried instead. In lexicographic order both
   * must be tried (c may carry the smaller device index), so c is skipped only when w is already
   * known to fail from there.
   */
  private dominated(c: number, q: number, p: number, cands: ReadonlyArray<number>): boolean {
    const { pb, jump } = this.t
    const kc = pb.classes[c]!
    for (const w of cands) {
      if (w === c || jump[w]![p]! !== q) continue
      const kw = pb.classes[w]!
      if (kw.speed > kc.speed || kw.memory > kc.memory || kw.link < kc.link) continue
      if (!this.lexOrder) return true
      this.used[w]!++
      this.code += this.radix[w]!
      const d = this.isDead(q)
      this.used[w]!--
      this.code -= this.radix[w]!
      if (d) return true
    }
    return false
  }

  /** A class sequence covering all layers with at most `budget` stages, or undefined. */
  solve(budget: number, lexicographic: boolean): ReadonlyArray<number> | undefined {
    this.lexOrder = lexicographic
    this.dead.clear() // entries hold for one budget
    this.path.length = 0
    this.used.fill(0)
    this.code = 0
    const total = this.t.pb.devices.length
    return this.dfs(0, Math.min(budget, total), total) ? [...this.path] : undefined
  }
}

/** The pruned search's answer to `denseLex`: lower the stage budget while feasible, then search in index order. */
export const searchLex = (t: Tables, devices: number, steps: Budget): ReadonlyArray<number> => {
  const search = new Search(t, steps)
  let stages = search.solve(devices, false)!.length
  for (;;) {
    const fewer = stages > 1 ? search.solve(stages - 1, false) : undefined
    if (fewer === undefined) break
    stages = fewer.length
  }
  return search.solve(stages, true)!
}

