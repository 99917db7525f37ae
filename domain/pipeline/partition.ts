import { Data, Either } from "effect"
import type { LayerLoad } from "./cost.ts"

/**
 * Exact contiguous partitioning of a layer chain over heterogeneous devices.
 *
 * Problem: split layers 0..L−1 into contiguous stages, give each stage its own device (each
 * device at most once, in any order, some may stay idle), every stage's memory (sum of its
 * layers') within its device's memory, minimising the bottleneck max over stages of
 * sum(cost)/speed. With devices usable in any order this is NP-hard (Benoit & Robert, interval
 * mapping on heterogeneous processors), so the method is exact with a worst case exponential in
 * the number of distinct devices, and made fast in practice by search over the candidate
 * bottlenecks plus a pruned, memoised feasibility search. See `partition` for the argument.
 *
 * Numbers: a stage's time is computed as (prefix[end+1] − prefix[start]) / speed everywhere, so
 * the plan, its reported bottleneck and every comparison agree; with integer costs (below 2^53 in
 * total) that is exactly sum(cost)/speed.
 */

export interface Device {
  readonly id: string
  readonly speed: number
  readonly memory: number
}

export interface PartitionInput {
  readonly layers: ReadonlyArray<LayerLoad>
  readonly devices: ReadonlyArray<Device>
}

/** One stage of a computed partition: inclusive layer range on a device (by id). */
export interface PartitionStage {
  readonly device: string
  readonly start: number
  readonly end: number
}

export interface Partition {
  readonly stages: ReadonlyArray<PartitionStage>
  readonly bottleneck: number
}

export class InvalidPartitionInput extends Data.TaggedError("InvalidPartitionInput")<{ readonly reason: string }> {
  override get message() {
    return `invalid partition input: ${this.reason}`
  }
}

export class PartitionInfeasible extends Data.TaggedError("PartitionInfeasible")<{ readonly reason: string }> {
  override get message() {
    return `no partition fits: ${this.reason}`
  }
}

/**
 * The exact search is exponential in the number of device kinds (distinct speed and memory) in
 * the worst case; past a deterministic work budget it stops rather than hang.
 */
export class PartitionTooHard extends Data.TaggedError("PartitionTooHard")<{ readonly kinds: number; readonly steps: number }> {
  override get message() {
    return `no proven-optimal plan within ${this.steps} search steps over ${this.kinds} device kinds; group devices of similar speed and memory into fewer kinds (the search is exact, and exponential in the number of kinds)`
  }
}

export type PartitionError = InvalidPartitionInput | PartitionInfeasible | PartitionTooHard

const isNonNegativeFinite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0

/** Every reason the input cannot be planned at all, before any search. */
export const checkPartitionInput = (input: PartitionInput): Either.Either<void, InvalidPartitionInput> => {
  const fail = (reason: string) => Either.left(new InvalidPartitionInput({ reason }))
  if (!Array.isArray(input.layers) || input.layers.length === 0) return fail("there are no layers")
  if (!Array.isArray(input.devices) || input.devices.length === 0) return fail("there are no devices")
  let total = 0
  for (let i = 0; i < input.layers.length; i++) {
    const l = input.layers[i]!
    if (!isNonNegativeFinite(l.cost)) return fail(`layer ${i} cost must be a finite number ≥ 0, got ${String(l.cost)}`)
    if (!isNonNegativeFinite(l.memory)) return fail(`layer ${i} memory must be a finite number ≥ 0, got ${String(l.memory)}`)
    total += l.cost
  }
  if (!Number.isFinite(total)) return fail("the total layer cost overflows")
  const seen = new Set<string>()
  for (let d = 0; d < input.devices.length; d++) {
    const dev = input.devices[d]!
    if (typeof dev.id !== "string" || dev.id.length === 0) return fail(`device ${d} has no id`)
    if (seen.has(dev.id)) return fail(`device id ${JSON.stringify(dev.id)} appears more than once`)
    seen.add(dev.id)
    if (!(typeof dev.speed === "number" && Number.isFinite(dev.speed) && dev.speed > 0))
      return fail(`device ${dev.id} speed must be a finite number > 0, got ${String(dev.speed)}`)
    if (!isNonNegativeFinite(dev.memory)) return fail(`device ${dev.id} memory must be a finite number ≥ 0, got ${String(dev.memory)}`)
  }
  return Either.right(undefined)
}

// ---------------------------------------------------------------------------------------------
// Problem set-up shared by every search.

/** Devices with the same speed and memory are interchangeable: the search counts them, not names them. */
interface DeviceClass {
  readonly speed: number
  readonly memory: number
  /** Device indices (input order), ascending: uses take them in this order. */
  readonly members: ReadonlyArray<number>
  /** memReach[i]: the largest e such that layers i..e−1 fit this class's memory. */
  readonly memReach: Int32Array
}

interface Problem {
  readonly L: number
  readonly cost: Float64Array // prefix sums, length L+1
  readonly mem: Float64Array
  readonly classes: ReadonlyArray<DeviceClass>
  readonly devices: ReadonlyArray<Device>
}

const prefix = (xs: ReadonlyArray<number>): Float64Array => {
  const p = new Float64Array(xs.length + 1)
  for (let i = 0; i < xs.length; i++) p[i + 1] = p[i]! + xs[i]!
  return p
}

const setUp = (input: PartitionInput): Problem => {
  const L = input.layers.length
  const cost = prefix(input.layers.map((l) => l.cost))
  const mem = prefix(input.layers.map((l) => l.memory))
  const byKey = new Map<string, number[]>()
  input.devices.forEach((d, i) => {
    const key = `${d.speed}/${d.memory}`
    const list = byKey.get(key)
    if (list) list.push(i)
    else byKey.set(key, [i])
  })
  const classes: DeviceClass[] = [...byKey.values()].map((members) => {
    const d = input.devices[members[0]!]!
    const memReach = new Int32Array(L + 1)
    let e = 0
    for (let i = 0; i <= L; i++) {
      if (e < i) e = i
      while (e < L && mem[e + 1]! - mem[i]! <= d.memory) e++
      memReach[i] = e
    }
    return { speed: d.speed, memory: d.memory, members, memReach }
  })
  return { L, cost, mem, classes, devices: input.devices }
}

const stageTime = (pb: Problem, start: number, endExclusive: number, speed: number): number =>
  (pb.cost[endExclusive]! - pb.cost[start]!) / speed

// ---------------------------------------------------------------------------------------------
// Feasibility for a threshold T.

/**
 * Can the layers be covered with stages whose time is ≤ T (within a stage budget)?
 *
 * Why the searches below are exact:
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
class Tables {
  readonly jump: Int32Array[] = []
  readonly maxLayers: Int32Array[] = []
  readonly maxCost: Float64Array[] = []
  readonly maxMem: Float64Array[] = []

  constructor(
    readonly pb: Problem,
    readonly threshold: number
  ) {
    const { L, classes, cost, mem } = pb
    for (const k of classes) {
      const j = new Int32Array(L + 1)
      let e = 0
      for (let i = 0; i <= L; i++) {
        if (e < i) e = i
        const limit = k.memReach[i]!
        while (e < limit && stageTime(pb, i, e + 1, k.speed) <= threshold) e++
        j[i] = e
      }
      // Suffix maxima: the most one device of this class can take in any stage starting at ≥ p.
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
}

/** Mixed-radix code of "how many of each class are used": one number per state. */
const radices = (pb: Problem): { radix: Float64Array; states: number } => {
  const radix = new Float64Array(pb.classes.length)
  let r = 1
  pb.classes.forEach((k, c) => {
    radix[c] = r
    r *= k.members.length + 1
  })
  return { radix, states: r }
}

/**
 * Above this many device-count states (the product over device kinds of count + 1) the dense
 * table gives way to the pruned search; the table costs 9 bytes per state (72 MiB at the default).
 */
const DENSE_STATES = 1 << 23

/** Entries of the search's memo before it is dropped: a memo only saves work, so dropping it is always sound. */
const MEMO_LIMIT = 1 << 22

/** Default work budget of the pruned search, in search steps over the whole partition call. */
const SEARCH_STEPS = 10_000_000

export interface PartitionOptions {
  /** Largest dense table to build; above it the pruned search runs. Both are exact. */
  readonly denseStates?: number
  /** Search steps allowed before giving up with `PartitionTooHard`. */
  readonly searchSteps?: number
}

/** Thrown inside the search when its budget is spent; caught by `partition` and never escapes. */
class OutOfSteps {}

/** A step counter shared by every search of one partition call. */
class Budget {
  used = 0
  constructor(readonly steps: number) {}
  spend(): void {
    if (++this.used > this.steps) throw new OutOfSteps()
  }
}

/**
 * Dense dynamic programme over every multiset of used devices: reach[S] = the farthest position
 * any order of S gets to (fact 1). Exact by construction; returns a sequence with the fewest
 * stages, or undefined. Cost: states × classes, independent of how tight the threshold is.
 */
const denseSolve = (t: Tables, budget: number): ReadonlyArray<number> | undefined => {
  const { pb } = t
  const C = pb.classes.length
  const { radix, states } = radices(pb)
  const reach = new Int32Array(states)
  const choice = new Int8Array(states).fill(-1)
  const counts = new Int32Array(C)
  const size = new Int32Array(states)
  let best = -1
  for (let s = 0; s < states; s++) {
    if (s > 0) {
      // odometer increment of counts
      for (let c = 0; c < C; c++) {
        if (counts[c]! < pb.classes[c]!.members.length) {
          counts[c]!++
          break
        }
        counts[c] = 0
      }
      let r = 0
      let arg = -1
      let sz = 0
      for (let c = 0; c < C; c++) {
        if (counts[c] === 0) continue
        const prev = s - radix[c]!
        sz = size[prev]! + 1
        const q = t.jump[c]![reach[prev]!]!
        if (q > r || arg < 0) {
          r = q
          arg = c
        }
      }
      reach[s] = r
      choice[s] = arg
      size[s] = sz
    }
    if (reach[s] === pb.L && size[s]! <= budget && (best < 0 || size[s]! < size[best]!)) best = s
  }
  if (best < 0) return undefined
  const seq: number[] = []
  for (let s = best; s > 0; s -= radix[choice[s]!]!) seq.push(choice[s]!)
  return seq.reverse()
}

/**
 * The lexicographically first class sequence (by device index) of the fewest stages, `stages`,
 * from dense tables. need[S] is the nearest position from which the devices not in multiset S
 * finish with at most stages − |S| more stages; by fact 1 every position from need[S] on works,
 * so need[S] = min over unused classes c of the first p whose stage on c reaches need[S + c].
 * Walking forward, each step takes the smallest unused device index whose stage keeps the walk
 * at or beyond need of the new set: with an exact completion test, greedy is lexicographic.
 */
const denseLex = (t: Tables, stages: number): ReadonlyArray<number> | undefined => {
  const { pb } = t
  const { L, classes } = pb
  const C = classes.length
  const { radix, states } = radices(pb)
  // first[c][m]: the first p whose maximal stage on class c reaches m (jump is non-decreasing in p)
  const first = t.jump.map((j) => {
    const f = new Int32Array(L + 2).fill(L + 1)
    let p = 0
    for (let m = 0; m <= L; m++) {
      while (p <= L && j[p]! < m) p++
      f[m] = p
    }
    return f
  })
  const need = new Int32Array(states)
  const counts = new Int32Array(C)
  let size = 0
  classes.forEach((k, c) => {
    counts[c] = k.members.length
    size += k.members.length
  })
  for (let s = states - 1; s >= 0; s--) {
    if (s < states - 1) {
      // odometer decrement of counts
      for (let c = 0; c < C; c++) {
        if (counts[c]! > 0) {
          counts[c]!--
          size--
          break
        }
        counts[c] = classes[c]!.members.length
        size += classes[c]!.members.length
      }
    }
    if (size > stages) need[s] = L + 1
    else if (size === stages) need[s] = L
    else {
      let n = L
      for (let c = 0; c < C; c++) if (counts[c]! < classes[c]!.members.length) n = Math.min(n, first[c]![need[s + radix[c]!]!]!)
      need[s] = n
    }
  }
  if (need[0]! !== 0) return undefined
  const seq: number[] = []
  const used = new Int32Array(C)
  let s = 0
  let p = 0
  while (p < L) {
    let pick = -1
    for (let c = 0; c < C; c++) {
      const k = classes[c]!
      if (used[c]! >= k.members.length) continue
      const q = t.jump[c]![p]!
      if (q > p && q >= need[s + radix[c]!]! && (pick < 0 || k.members[used[c]!]! < classes[pick]!.members[used[pick]!]!)) pick = c
    }
    if (pick < 0) return undefined
    seq.push(pick)
    p = t.jump[pick]![p]!
    s += radix[pick]!
    used[pick]!++
  }
  return seq
}

/**
 * Depth-first search over device orders with the same facts plus bounds and a memo: for a set of
 * used devices, the farthest position from which finishing was proven impossible (with this
 * call's budget); every nearer position is then dead too (fact 1). Along one path the used set
 * only grows, so a set met again was fully explored before. In lexicographic mode the devices are
 * tried in index order, so the first complete sequence found is the lexicographically smallest.
 */
class Search {
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
      else cands.sort((a, b) => jump[b]![p]! - jump[a]![p]! || classes[a]!.speed - classes[b]!.speed || classes[a]!.memory - classes[b]!.memory || a - b)
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
   * Is choosing class c here no better than choosing a weaker class w that reaches the same q
   * (fact 2)? In free order the weaker one is simply tried instead. In lexicographic order both
   * must be tried (c may carry the smaller device index), so c is skipped only when w is already
   * known to fail from there.
   */
  private dominated(c: number, q: number, p: number, cands: ReadonlyArray<number>): boolean {
    const { pb, jump } = this.t
    const kc = pb.classes[c]!
    for (const w of cands) {
      if (w === c || jump[w]![p]! !== q) continue
      const kw = pb.classes[w]!
      if (kw.speed > kc.speed || kw.memory > kc.memory) continue
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

/** Feasibility at a threshold in free order: a sequence (with the fewest stages when the dense table is used), or undefined. */
const feasible = (t: Tables, budget: number, dense: boolean, steps: Budget): ReadonlyArray<number> | undefined =>
  dense ? denseSolve(t, budget) : new Search(t, steps).solve(budget, false)

/** The pruned search's answer to `denseLex`: lower the stage budget while feasible, then search in index order. */
const searchLex = (t: Tables, devices: number, steps: Budget): ReadonlyArray<number> => {
  const search = new Search(t, steps)
  let stages = search.solve(devices, false)!.length
  for (;;) {
    const fewer = stages > 1 ? search.solve(stages - 1, false) : undefined
    if (fewer === undefined) break
    stages = fewer.length
  }
  return search.solve(stages, true)!
}

// ---------------------------------------------------------------------------------------------
// Search over candidate bottlenecks.

/** The bottleneck of a class sequence walked with maximal stages at the tables' threshold. */
const walk = (t: Tables, seq: ReadonlyArray<number>): number => {
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
const pivotBetween = (pb: Problem, lo: number, hi: number): number | undefined => {
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

/** Given the device order, make every stage end as early as the later devices still allow. */
const earliestBoundaries = (t: Tables, seq: ReadonlyArray<number>): number[] => {
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

/**
 * The exact partition with the smallest bottleneck.
 *
 * Tie-breaking (so every node derives the same plan): among all plans with the optimal
 * bottleneck, take the one with the fewest stages; then the lexicographically smallest sequence
 * of device indices (positions in `input.devices`) from the first stage to the last; then the
 * lexicographically smallest stage ends (every boundary as early as possible).
 *
 * Algorithm: the optimum is one of the candidate stage times. Feasibility is monotone in the
 * threshold, so a search over candidates (weighted-median pivots, each feasible probe lowering
 * the upper end to the bottleneck it actually achieved) ends on the smallest feasible candidate.
 * Then, at that threshold, the stage budget is lowered while still feasible, and a search that
 * tries devices in index order finds the first (= lexicographically smallest) device sequence of
 * that length; boundaries are then moved as early as the remaining devices permit.
 */
export const partition = (input: PartitionInput, options: PartitionOptions = {}): Either.Either<Partition, PartitionError> => {
  const checked = checkPartitionInput(input)
  if (Either.isLeft(checked)) return Either.left(checked.left)
  const pb = setUp(input)
  const steps = new Budget(options.searchSteps ?? SEARCH_STEPS)
  try {
    return optimal(input, pb, options.denseStates ?? DENSE_STATES, steps)
  } catch (e) {
    if (e instanceof OutOfSteps) return Either.left(new PartitionTooHard({ kinds: pb.classes.length, steps: steps.steps }))
    throw e
  }
}

const optimal = (input: PartitionInput, pb: Problem, denseStates: number, steps: Budget): Either.Either<Partition, PartitionError> => {
  const infeasible = (reason: string) => Either.left(new PartitionInfeasible({ reason }))

  const largest = Math.max(...input.devices.map((d) => d.memory))
  for (let i = 0; i < pb.L; i++) {
    const m = input.layers[i]!.memory
    if (m > largest) return infeasible(`layer ${i} needs memory ${m} but the largest device has ${largest}`)
  }

  const n = input.devices.length
  const dense = radices(pb).states <= denseStates
  const any = new Tables(pb, Number.POSITIVE_INFINITY)
  const first = feasible(any, n, dense, steps)
  if (first === undefined) {
    const need = pb.mem[pb.L]!
    const have = input.devices.reduce((s, d) => s + d.memory, 0)
    return infeasible(
      need > have
        ? `the ${pb.L} layers need memory ${need} in total but the ${n} devices have ${have}`
        : `no assignment of the ${n} devices to contiguous stages fits every stage in its device's memory`
    )
  }

  let hi = walk(any, first)
  let lo = Number.NEGATIVE_INFINITY
  for (;;) {
    const t = pivotBetween(pb, lo, hi)
    if (t === undefined) break
    const tables = new Tables(pb, t)
    const seq = feasible(tables, n, dense, steps)
    if (seq === undefined) lo = t
    else hi = walk(tables, seq)
  }

  // At the optimum: fewest stages, then the lexicographically first device order.
  const best = new Tables(pb, hi)
  const seq = dense ? denseLex(best, denseSolve(best, n)!.length)! : searchLex(best, n, steps)
  const ends = earliestBoundaries(best, seq)

  const taken = new Map<number, number>()
  const out: PartitionStage[] = []
  let start = 0
  let bottleneck = 0
  seq.forEach((c, j) => {
    const k = pb.classes[c]!
    const u = taken.get(c) ?? 0
    taken.set(c, u + 1)
    const end = ends[j]!
    bottleneck = Math.max(bottleneck, stageTime(pb, start, end + 1, k.speed))
    out.push({ device: input.devices[k.members[u]!]!.id, start, end })
    start = end + 1
  })
  return Either.right({ stages: out, bottleneck })
}

// ---------------------------------------------------------------------------------------------
// Baseline.

export interface GreedyPartition extends Partition {
  /** Whether every stage happens to fit its device's memory: the baseline does not look. */
  readonly fitsMemory: boolean
}

/**
 * BASELINE ONLY, kept to measure the exact partitioner against: the original's split, which
 * gives each of the n devices, in the given order, an equal share (≈ total/n) of the compute
 * whatever its speed, and ignores memory. A stage closes once the running cost reaches
 * (k+1)·total/n; the last device takes whatever is left; with fewer layers than devices the
 * last devices stay idle. Never use it to plan.
 */
export const greedyPartition = (input: PartitionInput): Either.Either<GreedyPartition, InvalidPartitionInput> => {
  const checked = checkPartitionInput(input)
  if (Either.isLeft(checked)) return Either.left(checked.left)
  const { layers, devices } = input
  const n = devices.length
  const total = layers.reduce((s, l) => s + l.cost, 0)
  const stages: Array<{ device: string; start: number; end: number; cost: number; memory: number; d: Device }> = []
  let start = 0
  let cum = 0
  let cost = 0
  let memory = 0
  for (let i = 0; i < layers.length; i++) {
    cum += layers[i]!.cost
    cost += layers[i]!.cost
    memory += layers[i]!.memory
    const k = stages.length
    const last = i === layers.length - 1
    if (last || (k < n - 1 && cum >= ((k + 1) * total) / n)) {
      const d = devices[k]!
      stages.push({ device: d.id, start, end: i, cost, memory, d })
      start = i + 1
      cost = 0
      memory = 0
    }
  }
  return Either.right({
    stages: stages.map(({ device, start, end }) => ({ device, start, end })),
    bottleneck: Math.max(...stages.map((s) => s.cost / s.d.speed)),
    fitsMemory: stages.every((s) => s.memory <= s.d.memory)
  })
}
