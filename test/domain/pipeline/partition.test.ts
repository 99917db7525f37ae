import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import {
  bottleneckOf,
  greedyPartition,
  partition,
  PARTITION_LIMITS,
  type Device,
  type Partition,
  type PartitionInput,
  type PartitionOptions,
  type PartitionStage
} from "../../../domain/pipeline/partition.ts"

/**
 * A stage's time written from the spec: its compute, plus boundaryBytes / bandwidth for each
 * boundary it sends over (activations forward unless it is last, gradients back unless it is first).
 */
const timeOn = (input: PartitionInput, dev: Device, start: number, end: number, cost: number): number => {
  const sends = (start > 0 ? 1 : 0) + (end < input.layers.length - 1 ? 1 : 0)
  return cost / dev.speed + (dev.bandwidth === undefined ? 0 : ((input.boundaryBytes ?? 0) * sends) / dev.bandwidth)
}

type Oracle = { bottleneck: number; plan: PartitionStage[] } | undefined

/** Is plan a before plan b under the documented tie-breaking rule? (fewest stages, device indices, ends) */
const before = (input: PartitionInput, a: PartitionStage[], b: PartitionStage[]): boolean => {
  if (a.length !== b.length) return a.length < b.length
  const idx = (id: string) => input.devices.findIndex((d) => d.id === id)
  for (let i = 0; i < a.length; i++) {
    const da = idx(a[i]!.device)
    const db = idx(b[i]!.device)
    if (da !== db) return da < db
  }
  for (let i = 0; i < a.length; i++) if (a[i]!.end !== b[i]!.end) return a[i]!.end < b[i]!.end
  return false
}

/**
 * Brute force: every split into contiguous stages × every injective ordered choice of devices.
 * The only pruning drops partial plans already strictly worse than the best complete one, so
 * every optimal plan is still seen and the tie-break is chosen among all of them.
 */
const oracle = (input: PartitionInput): Oracle => {
  const { layers, devices } = input
  const L = layers.length
  let best = Number.POSITIVE_INFINITY
  let chosen: PartitionStage[] | undefined
  const stages: PartitionStage[] = []
  const used = devices.map(() => false)
  const go = (p: number, worst: number) => {
    if (p === L) {
      if (worst < best || (worst === best && chosen !== undefined && before(input, stages, chosen))) {
        best = worst
        chosen = [...stages]
      }
      return
    }
    let cost = 0
    let mem = 0
    for (let e = p; e < L; e++) {
      cost += layers[e]!.cost
      mem += layers[e]!.memory
      for (let d = 0; d < devices.length; d++) {
        const dev = devices[d]!
        if (used[d] || mem > dev.memory) continue
        const w = Math.max(worst, timeOn(input, dev, p, e, cost))
        if (w > best) continue
        used[d] = true
        stages.push({ device: dev.id, start: p, end: e })
        go(e + 1, w)
        stages.pop()
        used[d] = false
      }
    }
  }
  go(0, 0)
  return chosen === undefined ? undefined : { bottleneck: best, plan: chosen }
}

/** The plan is a valid partition of the input and really has the bottleneck it reports. */
const checkPlan = (input: PartitionInput, p: Partition) => {
  let next = 0
  let worst = 0
  const seen = new Set<string>()
  for (const s of p.stages) {
    expect(s.start).toBe(next)
    expect(s.end).toBeGreaterThanOrEqual(s.start)
    const dev = input.devices.find((d) => d.id === s.device)!
    expect(dev).toBeDefined()
    expect(seen.has(s.device)).toBe(false)
    seen.add(s.device)
    let cost = 0
    let mem = 0
    for (let i = s.start; i <= s.end; i++) {
      cost += input.layers[i]!.cost
      mem += input.layers[i]!.memory
    }
    expect(mem).toBeLessThanOrEqual(dev.memory)
    worst = Math.max(worst, timeOn(input, dev, s.start, s.end, cost))
    next = s.end + 1
  }
  expect(next).toBe(input.layers.length)
  expect(worst).toBe(p.bottleneck)
  expect(bottleneckOf(input, p.stages)).toEqual(Either.right(p.bottleneck))
}

const instance = (maxLayers: number, maxDevices: number) =>
  fc
    .record({
      layers: fc.array(fc.record({ cost: fc.integer({ min: 0, max: 20 }), memory: fc.integer({ min: 0, max: 10 }) }), {
        minLength: 1,
        maxLength: maxLayers
      }),
      devices: fc.array(fc.record({ speed: fc.integer({ min: 1, max: 6 }), memory: fc.integer({ min: 0, max: 40 }) }), {
        minLength: 1,
        maxLength: maxDevices
      })
    })
    .map(({ layers, devices }): PartitionInput => ({ layers, devices: devices.map((d, i) => ({ id: `d${i}`, ...d })) }))

/**
 * An instance whose devices may have links (a few bandwidths, so that kinds repeat) and whose
 * boundaries carry bytes: link times from 0 to 40, against stage computes from 0 to about 100.
 */
const linked = (maxLayers: number, maxDevices: number) =>
  fc
    .tuple(
      instance(maxLayers, maxDevices),
      fc.array(fc.constantFrom(undefined, 1, 2, 4, 5), { minLength: maxDevices, maxLength: maxDevices }),
      fc.integer({ min: 0, max: 40 })
    )
    .map(
      ([input, bandwidths, boundaryBytes]): PartitionInput => ({
        ...input,
        boundaryBytes,
        devices: input.devices.map((d, i) => (bandwidths[i] === undefined ? d : { ...d, bandwidth: bandwidths[i] }))
      })
    )

/** The plan equals the brute force's: feasibility, bottleneck, the tie-broken stages; proven optimal. */
const agreesWithOracle = (input: PartitionInput, options: PartitionOptions = {}): Oracle => {
  const want = oracle(input)
  const got = partition(input, options)
  if (want === undefined) {
    expect(Either.isLeft(got)).toBe(true)
    if (Either.isLeft(got)) expect(got.left._tag).toBe("PartitionInfeasible")
    return want
  }
  if (Either.isLeft(got)) throw new Error(`unexpected ${got.left.message}`)
  expect(got.right.bottleneck).toBe(want.bottleneck)
  expect([got.right.lowerBound, got.right.gap]).toEqual([want.bottleneck, 0])
  checkPlan(input, got.right)
  expect(got.right.stages).toEqual(want.plan)
  return want
}

/**
 * Out of search steps: the best plan found and a bound the brute-force optimum respects
 * (lowerBound ≤ optimum ≤ bottleneck, gap 0 only when optimal), or PartitionTooHard when none was
 * found. Counts the plans left with an open gap and those proven optimal anyway.
 */
const withinBudget = (input: PartitionInput, searchSteps: number, seen: { bounded: number; optimalAnyway: number }) => {
  const want = oracle(input)
  const got = partition(input, { denseStates: 0, searchSteps })
  if (want === undefined) return
  if (Either.isLeft(got)) {
    expect(got.left._tag).toBe("PartitionTooHard")
    return
  }
  const p = got.right
  checkPlan(input, p)
  expect(p.lowerBound).toBeLessThanOrEqual(want.bottleneck)
  expect(p.bottleneck).toBeGreaterThanOrEqual(want.bottleneck)
  if (p.gap === 0) expect(p.bottleneck).toBe(want.bottleneck)
  else expect(p.gap).toBeCloseTo((p.bottleneck - p.lowerBound) / p.lowerBound, 12)
  if (p.gap > 0) seen.bounded++
  else seen.optimalAnyway++
}

const eq = (speed: number, n: number, memory = 1e9) => Array.from({ length: n }, (_, i) => ({ id: `d${i}`, speed, memory }))
const costs = (cs: number[]) => cs.map((cost) => ({ cost, memory: 1 }))

describe("exact partitioner", () => {
  it("equals the brute-force oracle on feasibility, bottleneck and the tie-broken plan (10,000 random instances)", () => {
    let feasible = 0
    let infeasible = 0
    fc.assert(
      fc.property(instance(14, 6), (input) => {
        if (agreesWithOracle(input) === undefined) infeasible++
        else feasible++
      }),
      { numRuns: 10_000 }
    )
    // both kinds of instance were really exercised
    expect(feasible).toBeGreaterThan(1000)
    expect(infeasible).toBeGreaterThan(1000)
  })

  it("gives the same plan with the pruned search as with the dense table: against the oracle, and on larger clusters", () => {
    fc.assert(
      fc.property(instance(14, 6), (input) => {
        const want = oracle(input)
        const got = partition(input, { denseStates: 0 })
        if (want === undefined) expect(Either.isLeft(got)).toBe(true)
        else expect(Either.getOrThrow(got).stages).toEqual(want.plan)
      }),
      { numRuns: 3_000 }
    )
    const kinds = [{ speed: 1, memory: 30 }, { speed: 2, memory: 50 }, { speed: 5, memory: 60 }]
    fc.assert(
      fc.property(
        fc.array(fc.record({ cost: fc.integer({ min: 1, max: 30 }), memory: fc.integer({ min: 1, max: 12 }) }), { minLength: 20, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 2, maxLength: 12 }),
        (layers, picks) => {
          const input = { layers, devices: picks.map((k, i) => ({ id: `d${i}`, ...kinds[k]! })) }
          expect(partition(input, { denseStates: 0 })).toEqual(partition(input))
        }
      ),
      { numRuns: 200 }
    )
  })

  it("finds 14 on [3,3,9,2,5,1,8] with 3 equal devices, where the greedy baseline gives 15", () => {
    const input = { layers: costs([3, 3, 9, 2, 5, 1, 8]), devices: eq(1, 3) }
    const exact = Either.getOrThrow(partition(input))
    const greedy = Either.getOrThrow(greedyPartition(input))
    expect(exact.bottleneck).toBe(14)
    expect(greedy.bottleneck).toBe(15)
    // [3] [3,9,2] [5,1,8]: the earliest boundaries among the plans achieving 14
    expect(exact.stages).toEqual([
      { device: "d0", start: 0, end: 0 },
      { device: "d1", start: 1, end: 3 },
      { device: "d2", start: 4, end: 6 }
    ])
  })

  it("gives a faster device more layers and leaves a useless one idle", () => {
    const input = {
      layers: costs([4, 4, 4, 4, 4, 4]),
      devices: [
        { id: "slow", speed: 1, memory: 100 },
        { id: "fast", speed: 2, memory: 100 },
        { id: "tiny", speed: 0.01, memory: 100 }
      ]
    }
    const p = Either.getOrThrow(partition(input))
    expect(p.bottleneck).toBe(8)
    expect(p.stages).toEqual([
      { device: "slow", start: 0, end: 1 },
      { device: "fast", start: 2, end: 5 }
    ])
  })

  it("respects memory even when it costs speed", () => {
    const input = {
      layers: [
        { cost: 1, memory: 5 },
        { cost: 1, memory: 5 }
      ],
      devices: [
        { id: "fast-small", speed: 10, memory: 5 },
        { id: "slow-big", speed: 1, memory: 10 }
      ]
    }
    // both layers on fast-small do not fit; one each costs 1/1 on slow-big
    expect(Either.getOrThrow(partition(input)).bottleneck).toBe(1)
  })

  it("tie-breaking: fewest stages, then smallest device indices, then earliest boundaries", () => {
    // b alone achieves 1, and so do a then b: fewest stages beats the smaller first device index
    const one = Either.getOrThrow(partition({ layers: costs([1, 1]), devices: [{ id: "a", speed: 1, memory: 9 }, { id: "b", speed: 2, memory: 9 }] }))
    expect(one.stages).toEqual([{ device: "b", start: 0, end: 1 }])
    // a then b, or b then a, both achieve 1 with two stages: the smaller index goes first
    const two = Either.getOrThrow(partition({ layers: costs([1, 1]), devices: eq(1, 2) }))
    expect(two.stages.map((s) => s.device)).toEqual(["d0", "d1"])
    // [1,0,1] on two equal devices: bottleneck 1 either way; the first boundary goes as early as possible
    const early = Either.getOrThrow(partition({ layers: costs([1, 0, 1]), devices: eq(1, 2) }))
    expect(early.stages).toEqual([
      { device: "d0", start: 0, end: 0 },
      { device: "d1", start: 1, end: 2 }
    ])
    // identical devices are used in index order
    const order = Either.getOrThrow(partition({ layers: costs([1, 1, 1]), devices: eq(1, 5) }))
    expect(order.stages.map((s) => s.device)).toEqual(["d0", "d1", "d2"])
  })

  it("is deterministic: the same input gives the same plan", () => {
    fc.assert(
      fc.property(instance(30, 10), (input) => {
        expect(partition(input)).toEqual(partition(input))
      }),
      { numRuns: 200 }
    )
  })

  it("names why an input cannot be planned", () => {
    const reason = (input: PartitionInput) =>
      Either.match(partition(input), { onLeft: (e) => `${e._tag}: ${e.message}`, onRight: () => "planned" })
    expect(reason({ layers: [], devices: eq(1, 1) })).toMatch(/InvalidPartitionInput: .*no layers/)
    expect(reason({ layers: costs([1]), devices: [] })).toMatch(/InvalidPartitionInput: .*no devices/)
    expect(reason({ layers: [{ cost: -1, memory: 0 }], devices: eq(1, 1) })).toMatch(/layer 0 cost/)
    expect(reason({ layers: [{ cost: Number.NaN, memory: 0 }], devices: eq(1, 1) })).toMatch(/layer 0 cost/)
    expect(reason({ layers: [{ cost: 1, memory: -2 }], devices: eq(1, 1) })).toMatch(/layer 0 memory/)
    expect(reason({ layers: costs([1]), devices: [{ id: "x", speed: 0, memory: 1 }] })).toMatch(/device x speed/)
    expect(reason({ layers: costs([1]), devices: [{ id: "x", speed: Number.POSITIVE_INFINITY, memory: 1 }] })).toMatch(/device x speed/)
    expect(reason({ layers: costs([1]), devices: [{ id: "x", speed: 1, memory: -1 }] })).toMatch(/device x memory/)
    expect(reason({ layers: costs([1]), devices: [{ id: "", speed: 1, memory: 1 }] })).toMatch(/device 0 has no id/)
    expect(reason({ layers: costs([1]), devices: [{ id: "x", speed: 1, memory: 1 }, { id: "x", speed: 2, memory: 1 }] })).toMatch(/"x" appears more than once/)
    expect(reason({ layers: [{ cost: 1, memory: 1 }, { cost: 1, memory: 12 }], devices: [{ id: "a", speed: 1, memory: 8 }] })).toBe(
      "PartitionInfeasible: no partition fits: layer 1 needs memory 12 but the largest device has 8"
    )
    expect(reason({ layers: [{ cost: 1, memory: 6 }, { cost: 1, memory: 6 }], devices: [{ id: "a", speed: 1, memory: 8 }] })).toMatch(
      /PartitionInfeasible: .*need memory 12 in total but the 1 devices have 8/
    )
    expect(
      reason({
        layers: [{ cost: 1, memory: 6 }, { cost: 1, memory: 2 }, { cost: 1, memory: 6 }],
        devices: [{ id: "a", speed: 1, memory: 7 }, { id: "b", speed: 1, memory: 7 }]
      })
    ).toMatch(/PartitionInfeasible: .*no assignment of the 2 devices/)
    const distinct = { layers: costs(Array.from({ length: 40 }, (_, i) => 1 + ((i * 7) % 11))), devices: Array.from({ length: 12 }, (_, i) => ({ id: `d${i}`, speed: 1 + i, memory: 1e9 })) }
    // No plan at all within one search step: there is nothing to answer with.
    const tight = { ...distinct, devices: distinct.devices.map((d, i) => ({ ...d, memory: 30 + i })) }
    expect(Either.match(partition(tight, { denseStates: 0, searchSteps: 1 }), { onLeft: (e) => e._tag, onRight: () => "planned" })).toBe("PartitionTooHard")
    expect(Either.isRight(partition(distinct))).toBe(true)
  })
})

describe("exact partitioner out of search steps", () => {
  it("answers with the best plan it found and a bound the brute-force optimum respects: lowerBound ≤ optimum ≤ bottleneck, gap 0 only when optimal; or PartitionTooHard when it found none (property)", () => {
    const seen = { bounded: 0, optimalAnyway: 0 }
    fc.assert(
      fc.property(instance(12, 6), fc.integer({ min: 1, max: 300 }), (input, searchSteps) => withinBudget(input, searchSteps, seen)),
      { numRuns: 3000 }
    )
    // Both outcomes were really exercised: plans with an open gap, and plans proven optimal within the budget.
    expect(seen.bounded).toBeGreaterThan(50)
    expect(seen.optimalAnyway).toBeGreaterThan(50)
  })

  it("on clusters too large for the budget: a plan within its stated gap instead of a refusal", () => {
    const distinct = { layers: costs(Array.from({ length: 40 }, (_, i) => 1 + ((i * 7) % 11))), devices: Array.from({ length: 12 }, (_, i) => ({ id: `d${i}`, speed: 1 + i, memory: 1e9 })) }
    const bounded = Either.getOrThrow(partition(distinct, { denseStates: 0, searchSteps: 2000 }))
    const exact = Either.getOrThrow(partition(distinct))
    checkPlan(distinct, bounded)
    expect(exact.gap).toBe(0)
    expect(bounded.lowerBound).toBeLessThanOrEqual(exact.bottleneck)
    expect(bounded.bottleneck).toBeGreaterThanOrEqual(exact.bottleneck)
  })
})

describe("exact partitioner with communication at stage boundaries", () => {
  /** The same input with communication taken away: no boundary bytes, no links. */
  const computeOnly = (input: PartitionInput): PartitionInput => ({
    layers: input.layers,
    devices: input.devices.map(({ bandwidth: _, ...d }) => d)
  })

  it("equals the brute-force oracle on bottleneck and the tie-broken plan, which fits memory and whose bottleneck is bottleneckOf its stages (5,000 random instances)", () => {
    let feasible = 0
    let commMatters = 0
    let fewerStages = 0
    fc.assert(
      fc.property(linked(12, 6), (input) => {
        const want = agreesWithOracle(input)
        if (want === undefined) return
        feasible++
        const bare = oracle(computeOnly(input))!
        if (want.bottleneck > bare.bottleneck) commMatters++
        if (want.plan.length < bare.plan.length) fewerStages++
      }),
      { numRuns: 5_000 }
    )
    // communication really changed the optimum, and the shape of the plan, on many instances
    expect(feasible).toBeGreaterThan(1000)
    expect(commMatters).toBeGreaterThan(500)
    expect(fewerStages).toBeGreaterThan(100)
  })

  it("gives the same plans with the pruned search: against the oracle, and as the dense table on larger clusters", () => {
    fc.assert(
      fc.property(linked(12, 6), (input) => {
        agreesWithOracle(input, { denseStates: 0 })
      }),
      { numRuns: 2_000 }
    )
    const kinds = [{ speed: 1, memory: 30, bandwidth: 1 }, { speed: 2, memory: 50 }, { speed: 2, memory: 50, bandwidth: 2 }, { speed: 5, memory: 60, bandwidth: 4 }]
    fc.assert(
      fc.property(
        fc.array(fc.record({ cost: fc.integer({ min: 1, max: 30 }), memory: fc.integer({ min: 1, max: 12 }) }), { minLength: 20, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2, maxLength: 12 }),
        fc.integer({ min: 0, max: 60 }),
        (layers, picks, boundaryBytes) => {
          const input = { layers, boundaryBytes, devices: picks.map((k, i) => ({ id: `d${i}`, ...kinds[k]! })) }
          const dense = partition(input)
          expect(partition(input, { denseStates: 0 })).toEqual(dense)
          if (Either.isRight(dense)) checkPlan(input, dense.right)
        }
      ),
      { numRuns: 200 }
    )
  })

  it("out of search steps: lowerBound ≤ optimum ≤ bottleneck with the stated gap, gap 0 only when optimal (property)", () => {
    const seen = { bounded: 0, optimalAnyway: 0 }
    fc.assert(
      fc.property(linked(12, 6), fc.integer({ min: 1, max: 300 }), (input, searchSteps) => withinBudget(input, searchSteps, seen)),
      { numRuns: 2_000 }
    )
    expect(seen.bounded).toBeGreaterThan(30)
    expect(seen.optimalAnyway).toBeGreaterThan(30)
  })

  it("with boundaryBytes absent or 0 gives exactly the compute-only result, whatever the bandwidths (property)", () => {
    fc.assert(
      fc.property(linked(14, 6), fc.constantFrom(undefined, 0), fc.integer({ min: 1, max: 300 }), (input, boundaryBytes, searchSteps) => {
        const { boundaryBytes: _, ...rest } = input
        const silent = boundaryBytes === undefined ? rest : { ...rest, boundaryBytes }
        const bare = computeOnly(input)
        for (const options of [{}, { denseStates: 0 }, { denseStates: 0, searchSteps }]) expect(partition(silent, options)).toEqual(partition(bare, options))
        expect(greedyPartition(silent)).toEqual(greedyPartition(bare))
      }),
      { numRuns: 1_000 }
    )
  })

  it("one stage on one device wins when a slow link costs more than splitting saves: it sends nothing", () => {
    const input = { layers: costs([4, 4, 4, 4]), devices: eq(1, 2).map((d) => ({ ...d, bandwidth: 100 })), boundaryBytes: 1000 }
    const split = Either.getOrThrow(partition({ ...input, boundaryBytes: 0 }))
    expect(split.stages.length).toBe(2) // 8 each when links are free
    expect(bottleneckOf(input, split.stages)).toEqual(Either.right(8 + 10)) // each half sends one boundary of 10 s
    const p = Either.getOrThrow(partition(input))
    expect(p.stages).toEqual([{ device: "d0", start: 0, end: 3 }])
    expect(p.bottleneck).toBe(16)
  })

  it("a slow link leaves its device idle: fewer stages than compute-only, on the well-connected devices", () => {
    // 12 unit layers on 4 equal devices: compute-only uses all 4 (3 each); slow0/slow1 take 10 s per boundary, fast0/fast1 1 s
    const input = {
      layers: costs(Array.from({ length: 12 }, () => 1)),
      boundaryBytes: 10,
      devices: [
        { id: "slow0", speed: 1, memory: 99, bandwidth: 1 },
        { id: "fast0", speed: 1, memory: 99, bandwidth: 10 },
        { id: "slow1", speed: 1, memory: 99, bandwidth: 1 },
        { id: "fast1", speed: 1, memory: 99, bandwidth: 10 }
      ]
    }
    const bare = Either.getOrThrow(partition({ ...input, boundaryBytes: undefined }))
    expect(bare.stages.length).toBe(4)
    expect(Either.getOrThrow(bottleneckOf(input, bare.stages))).toBe(3 + 2 * 10)
    const p = Either.getOrThrow(partition(input))
    expect(p.stages).toEqual([
      { device: "fast0", start: 0, end: 5 },
      { device: "fast1", start: 6, end: 11 }
    ])
    expect(p.bottleneck).toBe(6 + 1)
  })

  it("puts the well-connected device in the middle, where a stage sends both ways", () => {
    // memory forces one layer per device; the middle stage sends twice, an end stage once
    const input = {
      layers: [10, 10, 10].map((cost) => ({ cost, memory: 1 })),
      boundaryBytes: 10,
      devices: [
        { id: "fast", speed: 1, memory: 1, bandwidth: 10 },
        { id: "slow0", speed: 1, memory: 1, bandwidth: 2 },
        { id: "slow1", speed: 1, memory: 1, bandwidth: 2 }
      ]
    }
    const bare = Either.getOrThrow(partition({ ...input, boundaryBytes: 0 }))
    expect(bare.stages.map((s) => s.device)).toEqual(["fast", "slow0", "slow1"])
    expect(bottleneckOf(input, bare.stages)).toEqual(Either.right(10 + 2 * 5))
    const p = Either.getOrThrow(partition(input))
    expect(p.stages.map((s) => s.device)).toEqual(["slow0", "fast", "slow1"])
    expect(p.bottleneck).toBe(10 + 5)
  })

  it("counts device kinds by bandwidth only when boundaries carry bytes", () => {
    const devices = Array.from({ length: PARTITION_LIMITS.kinds + 1 }, (_, i) => ({ id: `d${i}`, speed: 1, memory: 9, bandwidth: 1 + i }))
    const layers = costs([1, 1, 1])
    expect(Either.isRight(partition({ layers, devices, boundaryBytes: 0 }))).toBe(true)
    const refused = partition({ layers, devices, boundaryBytes: 1 })
    expect(Either.isLeft(refused) && refused.left.message).toMatch(/33 device kinds \(distinct speed, memory and bandwidth\)/)
  })

  it("refuses a bad bandwidth or boundary size, and stages bottleneckOf cannot read", () => {
    const reason = (input: PartitionInput) => Either.match(partition(input), { onLeft: (e) => `${e._tag}: ${e.message}`, onRight: () => "planned" })
    const on = (bandwidth: number, boundaryBytes = 1) => ({ layers: costs([1]), boundaryBytes, devices: [{ id: "x", speed: 1, memory: 1, bandwidth }] })
    for (const bad of [-1, 0, Number.NaN, Number.POSITIVE_INFINITY])
      expect(reason(on(bad))).toMatch(/^InvalidPartitionInput: .*device x bandwidth must be a finite number > 0/)
    expect(reason(on(5e-324, 1e10))).toMatch(/^InvalidPartitionInput: .*device x bandwidth 5e-324 is too small to send 10000000000 bytes/)
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(reason(on(1, bad))).toMatch(/^InvalidPartitionInput: .*boundaryBytes must be a finite number ≥ 0/)
      expect(Either.isLeft(greedyPartition(on(1, bad)))).toBe(true)
    }
    const input = { layers: costs([1, 1]), devices: eq(1, 1) }
    const why = (stages: PartitionStage[]) => Either.match(bottleneckOf(input, stages), { onLeft: (e) => e.message, onRight: String })
    expect(why([])).toMatch(/there are no stages/)
    expect(why([{ device: "nope", start: 0, end: 1 }])).toMatch(/stage 0 is on "nope", no device of the input/)
    expect(why([{ device: "d0", start: 1, end: 2 }])).toMatch(/stage 0 holds layers 1..2, not a range within 0..1/)
    expect(why([{ device: "d0", start: 0, end: 1 }])).toBe("2")
  })
})

describe("greedy baseline", () => {
  it("gives every device an equal share of compute in the given order, whatever its speed", () => {
    const g = Either.getOrThrow(
      greedyPartition({ layers: costs([1, 1, 1, 1]), devices: [{ id: "a", speed: 1, memory: 0 }, { id: "b", speed: 100, memory: 9 }] })
    )
    expect(g.stages).toEqual([
      { device: "a", start: 0, end: 1 },
      { device: "b", start: 2, end: 3 }
    ])
    expect(g.bottleneck).toBe(2)
    expect(g.fitsMemory).toBe(false)
  })

  it("reports its bottleneck under the same objective as the exact partitioner, communication included", () => {
    const input = { layers: costs([4, 4, 4, 4]), boundaryBytes: 6, devices: eq(1, 3).map((d, i) => ({ ...d, bandwidth: [6, 2, 3][i] })) }
    const g = Either.getOrThrow(greedyPartition(input))
    // [4,4] [4] [4]: 8 + 1 s sending forward, 4 + 3 s each way in the middle, 4 + 2 s sending back
    expect(g.stages.map((s) => [s.start, s.end])).toEqual([[0, 1], [2, 2], [3, 3]])
    expect(g.bottleneck).toBe(4 + 2 * 3)
    fc.assert(
      fc.property(linked(20, 8), (input) => {
        const g = Either.getOrThrow(greedyPartition(input))
        expect(bottleneckOf(input, g.stages)).toEqual(Either.right(g.bottleneck))
        if (g.fitsMemory) expect(Either.getOrThrow(partition(input)).bottleneck).toBeLessThanOrEqual(g.bottleneck)
      }),
      { numRuns: 300 }
    )
  })

  it("is never better than the exact plan when it happens to fit memory", () => {
    fc.assert(
      fc.property(instance(20, 8), (input) => {
        const g = Either.getOrThrow(greedyPartition(input))
        const e = partition(input)
        if (g.fitsMemory) expect(Either.getOrThrow(e).bottleneck).toBeLessThanOrEqual(g.bottleneck)
      }),
      { numRuns: 300 }
    )
  })
})

describe("large clusters (arrays far beyond what spreading into Math.max takes)", () => {
  const HUGE = 200_000

  it(`plans ${HUGE} identical devices`, () => {
    const p = Either.getOrThrow(partition({ layers: costs([4, 4, 4]), devices: eq(1, HUGE, 10) }))
    expect(p.stages).toEqual([0, 1, 2].map((i) => ({ device: `d${i}`, start: i, end: i })))
    expect(p.bottleneck).toBe(4)
  })

  it(`gives the greedy baseline over ${HUGE} layers and devices`, () => {
    const g = Either.getOrThrow(greedyPartition({ layers: costs(Array.from({ length: HUGE }, () => 1)), devices: eq(1, HUGE, 1) }))
    expect(g.stages.length).toBe(HUGE)
    expect(g.bottleneck).toBe(1)
  })
})

describe("input size", () => {
  const tag = (r: ReturnType<typeof partition>) => Either.match(r, { onLeft: (e) => `${e._tag}: ${e.message}`, onRight: () => "planned" })
  /** n devices that each hold one layer, in `kinds` speeds. */
  const oneEach = (n: number, kinds: number) => Array.from({ length: n }, (_, i) => ({ id: `d${i}`, speed: 1 + (i % kinds), memory: 1 }))

  it("refuses more device kinds than the search can enumerate, up front", () => {
    const devices = oneEach(PARTITION_LIMITS.kinds + 1, PARTITION_LIMITS.kinds + 1)
    expect(tag(partition({ layers: costs([1, 1, 1]), devices }))).toBe(
      `PartitionTooLarge: partition input too large: ${PARTITION_LIMITS.kinds + 1} device kinds (distinct speed and memory), at most ${PARTITION_LIMITS.kinds}; group devices of similar speed and memory into fewer kinds`
    )
    // 100 layers on 100 distinct devices searched for minutes before
    const t0 = Date.now()
    expect(tag(partition({ layers: costs(Array.from({ length: 100 }, (_, i) => 1 + (i % 7))), devices: oneEach(100, 100) }))).toMatch(/^PartitionTooLarge/)
    expect(Date.now() - t0).toBeLessThan(1_000)
  })

  it("refuses more layers × kinds and more devices than the limits", () => {
    const layers = Array.from({ length: PARTITION_LIMITS.layerKinds / 2 + 1 }, () => ({ cost: 1, memory: 1 }))
    expect(tag(partition({ layers, devices: oneEach(2, 2) }))).toMatch(/PartitionTooLarge: .*125001 layers × 2 device kinds = 250002, at most 250000/)
    expect(tag(partition({ layers: costs([1]), devices: eq(1, PARTITION_LIMITS.devices + 1) }))).toMatch(/PartitionTooLarge: .*1000001 devices, at most 1000000/)
  })

  it("refuses a plan deeper than the pruned search goes, where the call stack overflowed before", () => {
    // 2 kinds of 3,000 devices: 3,001² states, too many for the dense table, and up to 6,000 stages
    const deep = { layers: Array.from({ length: 6_000 }, () => ({ cost: 1, memory: 1 })), devices: oneEach(6_000, 2) }
    expect(tag(partition(deep))).toMatch(/PartitionTooLarge: .*pruned search, which plans at most 1024 stages/)
    // the dense table has no such limit (2 kinds of 1,000: 1,001² states), and the search does go that deep
    expect(Either.getOrThrow(partition({ layers: deep.layers.slice(0, 2_000), devices: deep.devices.slice(0, 2_000) })).stages.length).toBe(2_000)
    const limit = PARTITION_LIMITS.searchStages
    const atLimit = { layers: deep.layers.slice(0, limit), devices: deep.devices.slice(0, limit) }
    expect(Either.getOrThrow(partition(atLimit, { denseStates: 0 })).stages.length).toBe(limit)
  })
})
