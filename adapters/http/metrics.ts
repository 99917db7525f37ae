/**
 * The explorer's `/metrics`, in Prometheus's text format (prom-client, a registry of our own): the
 * ledger's state read off the live read models at each scrape, the HTTP requests served with a
 * latency histogram per route, and the process's own figures. Route labels are the API's route
 * names, never raw paths, so a scraper's series stay few whatever is asked.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client"
import type { LedgerState } from "../../domain/projections/ledger-state.ts"
import { outcomeOf } from "../../domain/pol/rounds.ts"
import { BASE_UNITS_PER_BLY } from "../../domain/rewards/units.ts"
import type { StepReport } from "../../domain/pipeline/step-report.ts"

/** The route a path belongs to: its first one or two segments when they are the API's, else "other". */
export const routeOf = (pathname: string): string => {
  const [first, second] = pathname.split("/").filter((s) => s.length > 0)
  if (first === undefined) return "/"
  if (first === "api" && second !== undefined && ["genesis", "model", "chains", "blocks", "experts", "events", "nodes", "rounds", "balances", "plans"].includes(second)) return `/api/${second}`
  return ["health", "metrics", "openapi.json"].includes(first) ? `/${first}` : "other"
}

/** The pipeline's figures, from the trainers' step reports: how steps went, the stages' occupancy and waits, the transport's troubles. */
const pipelineMetrics = (registry: Registry) => {
  const steps = new Counter({ name: "blyan_pipeline_steps_total", help: "Pipeline steps reported: done, failed (an attempt, retried), or taken alone after a fallback.", labelNames: ["outcome"], registers: [registry] })
  const stages = new Gauge({ name: "blyan_pipeline_stages", help: "Stages of the last pipeline step done.", registers: [registry] })
  const failures = new Counter({ name: "blyan_pipeline_stage_failures_total", help: "Failed attempts, by the node at fault.", labelNames: ["node"], registers: [registry] })
  const byStage = (name: string, help: string, buckets: Array<number>) => new Histogram({ name, help, labelNames: ["stage"], buckets, registers: [registry] })
  const occupancy = byStage("blyan_pipeline_stage_occupancy_ratio", "Share of a step's time a stage spent computing, by stage.", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1])
  const wait = byStage("blyan_pipeline_stage_wait_seconds", "Time in a step a stage waited for its microbatches (neighbours and the wire), by stage.", [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
  const transport = new Counter({
    name: "blyan_pipeline_transport_total",
    help: "The pipeline transport's chunks sent, and its troubles: retries, unreachable peers, damaged chunks, backpressure waits, breakers opened.",
    labelNames: ["kind"],
    registers: [registry]
  })
  return (r: StepReport) => {
    steps.inc({ outcome: r.outcome })
    if (r.failed !== undefined) failures.inc({ node: r.failed.node })
    if (r.outcome === "done") stages.set(r.stages.length)
    r.stages.forEach((s, i) => {
      occupancy.observe({ stage: String(i) }, r.wallMs > 0 ? Math.min(1, s.busyMs / r.wallMs) : 0)
      wait.observe({ stage: String(i) }, Math.max(0, r.wallMs - s.busyMs) / 1000)
    })
    for (const [kind, n] of Object.entries(r.transport)) transport.inc({ kind }, n)
  }
}

export const makeMetrics = (read: { readonly state: () => LedgerState; readonly projected: () => number }) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: "blyan_" })
  // prom-client names three gauges `…_total`, which Prometheus keeps for counters (promtool refuses them).
  for (const m of registry.getMetricsAsArray()) if (m.name.endsWith("_total") && !(m instanceof Counter)) registry.removeSingleMetric(m.name)
  const gauge = (name: string, help: string, labelNames: ReadonlyArray<string>, collect: (g: Gauge) => void) =>
    new Gauge({ name, help, labelNames: [...labelNames], registers: [registry], collect(this: Gauge) { collect(this) } })
  gauge("blyan_projected_seq", "The last seq the explorer's read models have folded in.", [], (g) => g.set(read.projected()))
  gauge("blyan_chain_events", "Events on chain A, and blocks on chain B.", ["chain"], (g) => {
    const s = read.state()
    g.set({ chain: "A" }, s.chain.chainA.length)
    g.set({ chain: "B" }, s.chain.chainB.length)
  })
  gauge("blyan_nodes", "Registered nodes by status.", ["status"], (g) => {
    const counts = { active: 0, banned: 0, retired: 0 }
    for (const n of read.state().nodes.values()) counts[n.status]++
    for (const [status, n] of Object.entries(counts)) g.set({ status }, n)
  })
  gauge("blyan_contributions", "Contributions to Proof-of-Learning rounds by outcome.", ["outcome"], (g) => {
    const counts = { accepted: 0, rejected: 0, undecided: 0 }
    for (const r of read.state().rounds.values())
      for (const c of r.contributions.keys()) counts[outcomeOf(r, c)]++
    for (const [outcome, n] of Object.entries(counts)) g.set({ outcome }, n)
  })
  gauge("blyan_bly_supply", "BLY issued so far, in BLY (the ledger keeps exact base units).", [], (g) => {
    const supply = read.state().balances.supply
    g.set(Number(supply / BASE_UNITS_PER_BLY) + Number(supply % BASE_UNITS_PER_BLY) / Number(BASE_UNITS_PER_BLY))
  })
  gauge("blyan_node_memory_bytes", "Accelerator memory each registered node offers.", ["node"], (g) => {
    for (const n of read.state().nodes.values()) g.set({ node: n.node }, n.memory)
  })
  const pipeline = pipelineMetrics(registry)
  const requests = new Counter({ name: "blyan_http_requests_total", help: "HTTP requests answered, by route and status.", labelNames: ["route", "status"], registers: [registry] })
  const latency = new Histogram({
    name: "blyan_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by route.",
    labelNames: ["route"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry]
  })
  return {
    contentType: registry.contentType,
    text: () => registry.metrics(),
    /** A pipeline trainer's report of a step (see `actors/pipeline-reports.ts`). */
    observeStep: pipeline,
    observe: (pathname: string, status: number, seconds: number) => {
      const route = routeOf(pathname)
      requests.inc({ route, status: String(status) })
      latency.observe({ route }, seconds)
    }
  }
}

export type Metrics = ReturnType<typeof makeMetrics>
