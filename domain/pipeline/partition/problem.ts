import type { Device, PartitionInput } from "./types.ts"

/**
 * Problem set-up shared by every search.
 *
 * Numbers: a stage's time is computed as (prefix[end+1] − prefix[start]) / speed everywhere, so
 * the plan, its reported bottleneck and every comparison agree; with integer costs (below 2^53 in
 * total) that is exactly sum(cost)/speed.
 */

/** Devices with the same speed and memory are interchangeable: the search counts them, not names them. */
export interface DeviceClass {
  readonly speed: number
  readonly memory: number
  /** Device indices (input order), ascending: uses take them in this order. */
  readonly members: ReadonlyArray<number>
  /** memReach[i]: the largest e such that layers i..e−1 fit this class's memory. */
  readonly memReach: Int32Array
}

export interface Problem {
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

/** Device indices grouped by kind (speed and memory), in order of first appearance. */
export const deviceKinds = (devices: ReadonlyArray<Device>): ReadonlyArray<ReadonlyArray<number>> => {
  const byKey = new Map<string, number[]>()
  devices.forEach((d, i) => {
    const key = `${d.speed}/${d.memory}`
    const list = byKey.get(key)
    if (list) list.push(i)
    else byKey.set(key, [i])
  })
  return [...byKey.values()]
}

const memReachOf = (mem: Float64Array, L: number, memory: number): Int32Array => {
  const memReach = new Int32Array(L + 1)
  let e = 0
  for (let i = 0; i <= L; i++) {
    if (e < i) e = i
    while (e < L && mem[e + 1]! - mem[i]! <= memory) e++
    memReach[i] = e
  }
  return memReach
}

export const setUp = (input: PartitionInput): Problem => {
  const L = input.layers.length
  const cost = prefix(input.layers.map((l) => l.cost))
  const mem = prefix(input.layers.map((l) => l.memory))
  const classes: DeviceClass[] = deviceKinds(input.devices).map((members) => {
    const d = input.devices[members[0]!]!
    return { speed: d.speed, memory: d.memory, members, memReach: memReachOf(mem, L, d.memory) }
  })
  return { L, cost, mem, classes, devices: input.devices }
}

export const stageTime = (pb: Problem, start: number, endExclusive: number, speed: number): number =>
  (pb.cost[endExclusive]! - pb.cost[start]!) / speed

/** Mixed-radix code of "how many of each class are used": one number per state. */
export const radices = (pb: Problem): { radix: Float64Array; states: number } => {
  const radix = new Float64Array(pb.classes.length)
  let r = 1
  pb.classes.forEach((k, c) => {
    radix[c] = r
    r *= k.members.length + 1
  })
  return { radix, states: r }
}

/** Thrown inside the search when its budget is spent; caught by `partition` and never escapes. */
export class OutOfSteps {}

/** A step counter shared by every search of one partition call. */
export class Budget {
  used = 0
  constructor(readonly steps: number) {}
  spend(): void {
    if (++this.used > this.steps) throw new OutOfSteps()
  }
}
