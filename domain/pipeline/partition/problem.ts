import type { Device, PartitionInput } from "./types.ts"

/**
 * Problem set-up shared by every search.
 *
 * Numbers: a stage's time is computed by `stageTime` everywhere, so the plan, its reported
 * bottleneck and every comparison agree; with integer costs (below 2^53 in total) its compute
 * part is exactly sum(cost)/speed.
 */

/** What a stage's time depends on besides its layers. */
export interface Rate {
  readonly speed: number
  /** Seconds to send one boundary's bytes over the device's link: 0 when links are free. */
  readonly link: number
}

/** Devices with the same speed, memory and link are interchangeable: the search counts them, not names them. */
export interface DeviceClass extends Rate {
  readonly memory: number
  /** Device indices (input order), ascending: uses take them in this order. */
  readonly members: ReadonlyArray<number>
  /** memReach[i]: the largest e such that layers i..e−1 fit this class's memory. */
  readonly memReach: Int32Array
}

/** What a stage's time reads of the chain: its length and the prefix sums of layer cost (length L+1). */
export interface Chain {
  readonly L: number
  readonly cost: Float64Array
}

export interface Problem extends Chain {
  readonly mem: Float64Array
  readonly classes: ReadonlyArray<DeviceClass>
  readonly devices: ReadonlyArray<Device>
}

export const prefix = (xs: ReadonlyArray<number>): Float64Array => {
  const p = new Float64Array(xs.length + 1)
  for (let i = 0; i < xs.length; i++) p[i + 1] = p[i]! + xs[i]!
  return p
}

/** A device's speed and link time under the input's boundary size. */
export const rateOf = (input: PartitionInput, d: Device): Rate => ({
  speed: d.speed,
  link: d.bandwidth === undefined ? 0 : (input.boundaryBytes ?? 0) / d.bandwidth
})

/** Device indices grouped by kind (speed, memory and link time), in order of first appearance. */
export const deviceKinds = (input: PartitionInput): ReadonlyArray<ReadonlyArray<number>> => {
  const byKey = new Map<string, number[]>()
  input.devices.forEach((d, i) => {
    const key = `${d.speed}/${d.memory}/${rateOf(input, d).link}`
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
  const classes: DeviceClass[] = deviceKinds(input).map((members) => {
    const d = input.devices[members[0]!]!
    return { ...rateOf(input, d), memory: d.memory, members, memReach: memReachOf(mem, L, d.memory) }
  })
  return { L, cost, mem, classes, devices: input.devices }
}

/**
 * The time of the stage holding layers start..endExclusive−1: its compute, plus one link time for
 * each boundary it sends over (full-duplex links: activations forward unless it is the last
 * stage, gradients back unless it is the first). The one place a stage's time is computed.
 */
export const stageTime = (ch: Chain, start: number, endExclusive: number, r: Rate): number => {
  const sends = (start > 0 ? 1 : 0) + (endExclusive < ch.L ? 1 : 0)
  return (ch.cost[endExclusive]! - ch.cost[start]!) / r.speed + r.link * sends
}

/**
 * The last end of the stages from i on class k (within memory) up to which the time does not
 * decrease in the end: memReach[i], but L−1 where ending at L saves the link forward.
 */
export const steadyEnd = (pb: Problem, k: DeviceClass, i: number): number => {
  const top = k.memReach[i]!
  return top === pb.L && k.link > 0 ? pb.L - 1 : top
}

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
