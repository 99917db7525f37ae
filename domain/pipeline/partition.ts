import { Either } from "effect"
import { maxOf } from "./extremes.ts"
import { earliestBoundaries, lowerBound, pivotBetween, walk } from "./partition/bottleneck.ts"
import { denseLex, denseSolve } from "./partition/dense.ts"
import { checkPartitionInput, checkPartitionSize } from "./partition/input.ts"
import { Budget, OutOfSteps, radices, setUp, stageTime, type Problem } from "./partition/problem.ts"
import { Search, searchLex } from "./partition/search.ts"
import { Tables } from "./partition/tables.ts"
import {
  PartitionInfeasible,
  PartitionTooHard,
  type Partition,
  type PartitionError,
  type PartitionInput,
  type PartitionStage
} from "./partition/types.ts"

/**
 * Exact contiguous partitioning of a layer chain over heterogeneous devices.
 *
 * Problem: split layers 0..L−1 into contiguous stages, give each stage its own device (each
 * device at most once, in any order, some may stay idle), every stage's memory (sum of its
 * layers') within its device's memory, minimising the bottleneck max over stages of the stage's
 * time: sum(cost)/speed, plus boundaryBytes/bandwidth for each boundary the stage sends over
 * (activations forward unless last, gradients back unless first). With devices usable in any
 * order this is NP-hard (Benoit & Robert, interval mapping on heterogeneous processors), so the
 * method is exact with a worst case exponential in the number of distinct devices, and made fast
 * in practice by search over the candidate bottlenecks plus a pruned, memoised feasibility
 * search. See `partition` for the argument.
 *
 * The pieces, under `partition/`: `types` (input, result, errors), `input` (checks), `problem`
 * (prefix sums, device kinds and the stage time), `tables` (per-threshold reach and the
 * exactness argument), `dense` (the dynamic programme), `search` (the bounded pruned search),
 * `bottleneck` (candidate thresholds and boundaries), `objective` (any plan's stage times and bottleneck),
 * `greedy` (the baseline).
 */

export type { Device, Partition, PartitionError, PartitionInput, PartitionStage } from "./partition/types.ts"
export { InvalidPartitionInput, PartitionInfeasible, PartitionTooHard, PartitionTooLarge } from "./partition/types.ts"
export { checkPartitionInput, checkPartitionSize, PARTITION_LIMITS } from "./partition/input.ts"
export { greedyPartition, type GreedyPartition } from "./partition/greedy.ts"
export { bottleneckOf, stageTimesOf } from "./partition/objective.ts"

/**
 * Above this many device-count states (the product over device kinds of count + 1) the dense
 * table gives way to the pruned search; the table costs 9 bytes per state (72 MiB at the default).
 */
const DENSE_STATES = 1 << 23

/** Default work budget of the pruned search, in search steps over the whole partition call. */
const SEARCH_STEPS = 10_000_000

export interface PartitionOptions {
  /** Largest dense table to build; above it the pruned search runs. Both are exact. */
  readonly denseStates?: number
  /** Search steps allowed: past them, the best plan found so far with its proven gap (`PartitionTooHard` if none). */
  readonly searchSteps?: number
}

/** Feasibility at a threshold in free order: a sequence (with the fewest stages when the dense table is used), or undefined. */
const feasible = (t: Tables, budget: number, dense: boolean, steps: Budget): ReadonlyArray<number> | undefined =>
  dense ? denseSolve(t, budget) : new Search(t, steps).solve(budget, false)

/**
 * The exact partition with the smallest bottleneck.
 *
 * Inputs over `PARTITION_LIMITS` are refused with `PartitionTooLarge` before any work. When the
 * pruned search spends its step budget, the answer is the best plan it found, with the lower bound
 * it proved (`lowerBound`, `gap`); a proven-optimal plan has gap 0.
 *
 * Tie-breaking (so every node derives the same plan): among all plans with the optimal
 * bottleneck, take the one with the fewest stages; then the lexicographically smallest sequence
 * of device indices (positions in `input.devices`) from the first stage to the last; then the
 * lexicographically smallest stage ends (every boundary as early as possible).
 *
 * Algorithm: the optimum is one of the candidate stage times (every stage that fits memory, on
 * every device kind, links counted). Feasibility is monotone in the threshold, so a search over candidates (weighted-median pivots, each feasible probe lowering
 * the upper end to the bottleneck it actually achieved) ends on the smallest feasible candidate.
 * Then, at that threshold, the stage budget is lowered while still feasible, and a search that
 * tries devices in index order finds the first (= lexicographically smallest) device sequence of
 * that length; boundaries are then moved as early as the remaining devices permit.
 */
export const partition = (input: PartitionInput, options: PartitionOptions = {}): Either.Either<Partition, PartitionError> => {
  const denseStates = options.denseStates ?? DENSE_STATES
  const checked = Either.flatMap(checkPartitionInput(input), () => checkPartitionSize(input, denseStates))
  if (Either.isLeft(checked)) return Either.left(checked.left)
  const pb = setUp(input)
  const dense = radices(pb).states <= denseStates
  const steps = new Budget(options.searchSteps ?? SEARCH_STEPS)
  try {
    return optimal(input, pb, dense, steps)
  } catch (e) {
    if (e instanceof OutOfSteps) return Either.left(PartitionTooHard.of({ kinds: pb.classes.length, steps: steps.steps }))
    throw e
  }
}

const infeasible = (reason: string) => Either.left(PartitionInfeasible.of(reason))

/** Why no threshold at all admits a plan: a layer too big for every device, or memory overall. */
const whyInfeasible = (input: PartitionInput, pb: Problem, anyPlan: () => ReadonlyArray<number> | undefined) => {
  const largest = maxOf(input.devices.map((d) => d.memory))
  for (let i = 0; i < pb.L; i++) {
    const m = input.layers[i]!.memory
    if (m > largest) return infeasible(`layer ${i} needs memory ${m} but the largest device has ${largest}`)
  }
  const first = anyPlan()
  if (first !== undefined) return Either.right(first)
  const n = input.devices.length
  const need = pb.mem[pb.L]!
  const have = input.devices.reduce((s, d) => s + d.memory, 0)
  return infeasible(
    need > have
      ? `the ${pb.L} layers need memory ${need} in total but the ${n} devices have ${have}`
      : `no assignment of the ${n} devices to contiguous stages fits every stage in its device's memory`
  )
}

const optimal = (input: PartitionInput, pb: Problem, dense: boolean, steps: Budget): Either.Either<Partition, PartitionError> => {
  const n = input.devices.length
  const any = new Tables(pb, Number.POSITIVE_INFINITY)
  const first = whyInfeasible(input, pb, () => feasible(any, n, dense, steps))
  if (Either.isLeft(first)) return Either.left(first.left)

  // The best plan so far (its class sequence), its bottleneck, and the largest threshold proven infeasible.
  let best = first.right
  let hi = walk(any, best)
  let lo = Number.NEGATIVE_INFINITY
  let proven = false
  try {
    for (;;) {
      const t = pivotBetween(pb, lo, hi)
      if (t === undefined) break
      const tables = new Tables(pb, t)
      const seq = feasible(tables, n, dense, steps)
      if (seq === undefined) lo = t
      else {
        hi = walk(tables, seq)
        best = seq
      }
    }
    proven = true
    // At the optimum: fewest stages, then the lexicographically first device order.
    const at = new Tables(pb, hi)
    const seq = dense ? denseLex(at, denseSolve(at, n)!.length)! : searchLex(at, n, steps)
    return Either.right({ ...assemble(input, at, seq), lowerBound: hi, gap: 0 })
  } catch (e) {
    if (!(e instanceof OutOfSteps)) throw e
    // Out of steps: the best plan found walks within `hi`; what the search proved bounds the optimum.
    const plan = assemble(input, new Tables(pb, hi), best)
    const bound = proven ? plan.bottleneck : Math.min(plan.bottleneck, lowerBound(pb, lo))
    return Either.right({ ...plan, lowerBound: bound, gap: plan.bottleneck === bound ? 0 : (plan.bottleneck - bound) / bound })
  }
}

/** The stages of a class sequence at the optimal threshold: devices of a class in index order, boundaries earliest. */
const assemble = (input: PartitionInput, best: Tables, seq: ReadonlyArray<number>): Omit<Partition, "lowerBound" | "gap"> => {
  const { pb } = best
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
    bottleneck = Math.max(bottleneck, stageTime(pb, start, end + 1, k))
    out.push({ device: input.devices[k.members[u]!]!.id, start, end })
    start = end + 1
  })
  return { stages: out, bottleneck }
}
