/**
 * Partition benchmarks (run: `npx tsx bench/partition.ts`), written to bench/results/partition.json:
 *
 * (a) time to plan 200 layers × 64 devices and 1,000 layers × 16 devices with the exact
 *     partitioner, against the greedy equal-share baseline on the same clusters in the same run;
 * (b) plan quality: the greedy baseline's bottleneck over the exact one on random heterogeneous
 *     clusters (ratio ≥ 1; how much slower a step is under the original split), and how often
 *     the greedy split does not even fit the devices' memory;
 * (c) plan quality with communication counted against the compute-only plan: on the clusters of
 *     (b) with link bandwidths (1–25 Gbit/s) and the activations of a transformer of a drawn
 *     hidden size crossing every boundary, both plans evaluated with `bottleneckOf` under the
 *     communication objective (ratio compute-only / comm-aware ≥ 1), how often they differ, and
 *     how much the links slow the best step over the same cluster with free links (how comparable
 *     communication is to compute there).
 *
 * Clusters are drawn from a seeded generator so every run measures the same instances.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Either } from "effect"
import { bottleneckOf, greedyPartition, partition, type PartitionInput } from "../domain/pipeline/partition.ts"

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const QUALITY_CLUSTERS = Number(process.env.BENCH_CLUSTERS ?? 500)

/** mulberry32: a small seeded generator, enough for reproducible instances. */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/**
 * GPU kinds a volunteer cluster is made of: relative training throughput and memory (GiB).
 * Real clusters are a handful of kinds, many devices of each.
 */
const KINDS = [
  { speed: 10, memory: 8 },
  { speed: 18, memory: 12 },
  { speed: 30, memory: 16 },
  { speed: 45, memory: 24 },
  { speed: 80, memory: 40 },
  { speed: 120, memory: 80 }
] as const

/**
 * A heterogeneous cluster: devices drawn from `kinds` of the catalogue, layer costs varying ×4
 * (MoE layers of different widths) and layer memory ×4, scaled so the model takes half the
 * cluster's memory: memory binds on the small cards, yet every instance has a plan.
 */
const cluster = (seed: number, layers: number, devices: number, kinds = KINDS.length): PartitionInput => {
  const r = rng(seed)
  const catalogue = KINDS.slice(KINDS.length - kinds)
  const ds = Array.from({ length: devices }, (_, i) => {
    const k = catalogue[int(r, 0, catalogue.length - 1)]!
    return { id: `d${i}`, speed: k.speed, memory: k.memory * 1024 }
  })
  const raw = Array.from({ length: layers }, () => ({ cost: int(r, 25, 100), memory: int(r, 1, 4) }))
  const scale = (0.5 * ds.reduce((s, d) => s + d.memory, 0)) / raw.reduce((s, l) => s + l.memory, 0)
  const smallest = Math.min(...ds.map((d) => d.memory))
  return { layers: raw.map((l) => ({ cost: l.cost, memory: Math.min(smallest, Math.floor(l.memory * scale)) })), devices: ds }
}

const timeIt = (f: () => unknown) => {
  const t0 = performance.now()
  f()
  return performance.now() - t0
}

/** Every device its own kind (no two share speed and memory): the search's hard case. */
const distinct = (seed: number, layers: number, devices: number): PartitionInput => {
  const c = cluster(seed, layers, devices)
  return { ...c, devices: c.devices.map((d, i) => ({ ...d, speed: d.speed + i / devices })) }
}

const planTime = (name: string, layers: number, devices: number, make = cluster) => {
  const inputs = Array.from({ length: REPEATS }, (_, i) => make(1000 * layers + devices + i, layers, devices))
  const exact = inputs.map((c) => timeIt(() => Either.getOrThrow(partition(c))))
  const greedy = inputs.map((c) => timeIt(() => Either.getOrThrow(greedyPartition(c))))
  const result = { name, layers, devices, clusters: REPEATS, exactMsMedian: round(median(exact), 2), exactMsMax: round(Math.max(...exact), 2), greedyMsMedian: round(median(greedy), 4) }
  console.log(`${name}: exact ${result.exactMsMedian} ms median (max ${result.exactMsMax}) vs greedy ${result.greedyMsMedian} ms over ${REPEATS} clusters`)
  return { ...result, exactOverGreedyTime: round(median(exact) / median(greedy), 1) }
}

const summary = (xs: number[]) => ({
  mean: round(xs.reduce((s, x) => s + x, 0) / xs.length),
  median: round(median(xs)),
  max: round(Math.max(...xs)),
  min: round(Math.min(...xs))
})

const quality = () => {
  const ratios: number[] = []
  const fitting: number[] = []
  let greedyUnfit = 0
  let planned = 0
  for (let i = 0; i < QUALITY_CLUSTERS; i++) {
    const r = rng(i)
    const c = cluster(7_000_000 + i, int(r, 8, 48), int(r, 2, 8))
    const exact = partition(c)
    if (Either.isLeft(exact)) continue
    planned++
    const greedy = Either.getOrThrow(greedyPartition(c))
    const ratio = greedy.bottleneck / exact.right.bottleneck
    ratios.push(ratio)
    if (greedy.fitsMemory) fitting.push(ratio)
    else greedyUnfit++
  }
  const out = {
    clusters: planned,
    greedyOverExact: summary(ratios),
    greedyOverExactWhereGreedyFits: summary(fitting),
    greedyDoesNotFitMemory: round(greedyUnfit / planned)
  }
  console.log(
    `quality over ${planned} clusters (8–48 layers, 2–8 devices): greedy/exact bottleneck mean ${out.greedyOverExact.mean}, median ${out.greedyOverExact.median}, max ${out.greedyOverExact.max}; ` +
      `where the greedy split fits memory (${fitting.length}) mean ${out.greedyOverExactWhereGreedyFits.mean}, median ${out.greedyOverExactWhereGreedyFits.median}; greedy split exceeds memory in ${Math.round(out.greedyDoesNotFitMemory * 100)}%`
  )
  return out
}

/** Link speeds of volunteer hosts, in Gbit/s. */
const LINKS_GBIT = [1, 3, 10, 25] as const
/** Hidden sizes drawn per cluster: compute per layer grows as hidden², activations as hidden. */
const HIDDEN = [1024, 2048, 4096, 8192] as const
/** Tokens per training step: 8 microbatches of 1,024 tokens. */
const STEP_TOKENS = 8 * 1024

/**
 * A cluster drawn as in (b), in physical units: device speed in FLOP/s (the catalogue's figure as TFLOP/s),
 * a link per device, a layer's cost the training FLOPs of a transformer layer over the step
 * (72·hidden² per token, ×0.4–1.6 as the catalogue's layer costs vary), and fp32 activations of
 * the step's tokens crossing every boundary each way. Small hidden sizes are link-bound on slow
 * links, large ones compute-bound.
 */
const linkedCluster = (i: number): { input: PartitionInput; hidden: number } => {
  const r = rng(9_000_000 + i)
  const hidden = HIDDEN[int(r, 0, HIDDEN.length - 1)]!
  const c = cluster(8_000_000 + i, int(r, 8, 48), int(r, 2, 8))
  const layerFlops = 72 * hidden * hidden * STEP_TOKENS
  const input = {
    layers: c.layers.map((l) => ({ cost: (l.cost / 62.5) * layerFlops, memory: l.memory })),
    devices: c.devices.map((d) => ({ ...d, speed: d.speed * 1e12, bandwidth: (LINKS_GBIT[int(r, 0, LINKS_GBIT.length - 1)]! * 1e9) / 8 })),
    boundaryBytes: STEP_TOKENS * hidden * 4
  }
  return { input, hidden }
}

const communication = () => {
  const ratios: number[] = []
  const slowdowns: number[] = []
  const byHidden = new Map<number, { ratios: number[]; slowdowns: number[] }>(HIDDEN.map((h) => [h, { ratios: [], slowdowns: [] }]))
  let differs = 0
  let fewerStages = 0
  for (let i = 0; i < QUALITY_CLUSTERS; i++) {
    const { input, hidden } = linkedCluster(i)
    const aware = partition(input)
    if (Either.isLeft(aware)) continue
    const { boundaryBytes: _, ...bare } = input
    const computeOnly = Either.getOrThrow(partition(bare))
    const ratio = Either.getOrThrow(bottleneckOf(input, computeOnly.stages)) / aware.right.bottleneck
    // how much links slow the step even on the best plan: comparable to compute or not
    const slowdown = aware.right.bottleneck / computeOnly.bottleneck
    ratios.push(ratio)
    slowdowns.push(slowdown)
    byHidden.get(hidden)!.ratios.push(ratio)
    byHidden.get(hidden)!.slowdowns.push(slowdown)
    if (JSON.stringify(computeOnly.stages) !== JSON.stringify(aware.right.stages)) differs++
    if (aware.right.stages.length < computeOnly.stages.length) fewerStages++
  }
  const out = {
    clusters: ratios.length,
    computeOnlyOverAware: summary(ratios),
    awareOverLinksFree: summary(slowdowns),
    byHidden: Object.fromEntries(
      [...byHidden].map(([h, xs]) => [h, { clusters: xs.ratios.length, computeOnlyOverAware: summary(xs.ratios), awareOverLinksFree: summary(xs.slowdowns) }])
    ),
    planDiffers: round(ratios.length === 0 ? 0 : differs / ratios.length),
    fewerStages: round(ratios.length === 0 ? 0 : fewerStages / ratios.length)
  }
  console.log(
    `communication over ${out.clusters} clusters (links ${LINKS_GBIT.join("/")} Gbit/s, hidden ${HIDDEN.join("/")}): compute-only/comm-aware bottleneck median ${out.computeOnlyOverAware.median}, max ${out.computeOnlyOverAware.max}, mean ${out.computeOnlyOverAware.mean}; ` +
      `by hidden size median ${HIDDEN.map((h) => out.byHidden[h]!.computeOnlyOverAware.median).join("/")}; the comm-aware plan differs in ${Math.round(out.planDiffers * 100)}%, uses fewer stages in ${Math.round(out.fewerStages * 100)}%; ` +
      `links slow the best step ×${out.awareOverLinksFree.median} median (by hidden size ${HIDDEN.map((h) => out.byHidden[h]!.awareOverLinksFree.median).join("/")}, min ${out.awareOverLinksFree.min}, max ${out.awareOverLinksFree.max})`
  )
  return out
}

const results = {
  at: new Date().toISOString(),
  machine: { node: process.version, cpus: (await import("node:os")).cpus().length },
  planning: [
    planTime("200 layers × 64 devices (6 kinds)", 200, 64),
    planTime("1000 layers × 16 devices (6 kinds)", 1000, 16),
    planTime("100 layers × 16 devices, all distinct", 100, 16, distinct),
    planTime("100 layers × 20 devices, all distinct", 100, 20, distinct)
  ],
  quality: quality(),
  communication: communication()
}
const out = path.join(import.meta.dirname, "results", "partition.json")
fs.writeFileSync(out, JSON.stringify(results, null, 2) + "\n")
console.log(`wrote ${path.relative(process.cwd(), out)}`)
