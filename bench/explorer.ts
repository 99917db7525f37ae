/**
 * The explorer's latency (run: `npm run build && npx tsx bench/explorer.ts`), written to
 * bench/results/explorer.json: p50 and p95 of the main routes over a file-store ledger of
 * `BENCH_EVENTS` (100,000) events of everyday traffic after `blyan init`, each against serving a
 * static file (the page's script) from the same server in the same run. `BENCH_REQUESTS` (300)
 * requests per route, one at a time, after a warm-up.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect } from "effect"
import { initLedger } from "../actors/genesis.ts"
import { startProjector } from "../actors/projector.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { Explorer, explorerOf, serveExplorer } from "../adapters/http/explorer-server.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { defaultSpec } from "../domain/model/spec.ts"
import { machineInfo, writeResults } from "./record.ts"
import { appendTraffic } from "./traffic.ts"

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300)
const page = path.join(import.meta.dirname, "../dist/web")
const percentile = (xs: ReadonlyArray<number>, p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/** Each request's time in ms, after a warm-up; every answer must be a 200. */
const timings = async (url: string) => {
  for (let i = 0; i < 20; i++) await (await fetch(url)).arrayBuffer()
  const ms: number[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now()
    const r = await fetch(url)
    await r.arrayBuffer()
    ms.push(performance.now() - t0)
    if (r.status !== 200) throw new Error(`${url}: ${r.status}`)
  }
  return { p50: percentile(ms, 0.5), p95: percentile(ms, 0.95) }
}

const main = Effect.gen(function* () {
  if (!fs.existsSync(path.join(page, "app.js"))) throw new Error("no dist/web/app.js: run `npm run build` first")
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-explorer-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(root, { recursive: true, force: true })))
  const events = yield* makeFileEventStore(root)
  const blobs = yield* makeFileBlobStore(root)
  yield* initLedger(defaultSpec).pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
  yield* appendTraffic(events, 0, EVENTS)
  const head = (yield* events.head)!
  const projector = yield* startProjector.pipe(Effect.provideService(EventStore, events))
  yield* projector.awaitSeq(head.seq)
  const explorer = explorerOf(projector, events, blobs, {
    contribute: () => Effect.fail({ message: "no contributions in a bench" }),
    chat: () => Effect.fail({ message: "no chat in a bench" })
  })
  const url = yield* serveExplorer({ host: "127.0.0.1", port: 0, page }).pipe(Effect.provideService(Explorer, explorer))
  const routes = {
    "/health": "/health",
    "/api/model": "/api/model",
    "/api/chains/B/blocks": "/api/chains/B/blocks?limit=100",
    "/api/events": `/api/events?from=${Math.floor(head.seq / 2)}&limit=100`,
    "/api/nodes": "/api/nodes",
    "/api/balances/{addr}": "/api/balances/n50",
    "/metrics": "/metrics"
  }
  const baseline = yield* Effect.promise(() => timings(`${url}/app.js`))
  const measured: Record<string, { p50Ms: number; p95Ms: number; p50Ratio: number; p95Ratio: number }> = {}
  for (const [name, route] of Object.entries(routes)) {
    const t = yield* Effect.promise(() => timings(`${url}${route}`))
    measured[name] = { p50Ms: round(t.p50), p95Ms: round(t.p95), p50Ratio: round(t.p50 / baseline.p50, 2), p95Ratio: round(t.p95 / baseline.p95, 2) }
  }
  const result = {
    bench: "explorer",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `a file-store ledger of ${head.seq + 1} events (init, then everyday traffic: receipts, rewards, a node every 50 events); ${REQUESTS} requests per route one at a time over loopback; ratios to serving the page's script (${fs.statSync(path.join(page, "app.js")).size} bytes) from the same server`,
    events: head.seq + 1,
    nodes: projector.state().nodes.size,
    staticFile: { p50Ms: round(baseline.p50), p95Ms: round(baseline.p95) },
    routes: measured
  }
  console.log(JSON.stringify(result, null, 2))
  writeResults("explorer", result)
})

await Effect.runPromise(Effect.scoped(main))
