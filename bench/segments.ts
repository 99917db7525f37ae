/**
 * The segmented file store's memory and open cost against the length of its log (run:
 * `npx tsx bench/segments.ts`), written to bench/results/segments.json:
 *
 * (a) heap while appending BENCH_SEGMENT_EVENTS (200k) small events with 64 appenders, sampled
 *     after a full GC every tenth of the run: what it holds must not grow with the log, so the
 *     growth from the first sample to the last must stay under MAX_GROWTH_MB (the run fails if not);
 * (b) a read-only open of the finished log (checks the indexes, reads no event) against reading
 *     and verifying the whole log in the same run, and the heap that open adds;
 * (c) heap while streaming the whole log (`readAll(0)`), sampled the same way, under the same bound.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Stream } from "effect"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { newEvent, type NewEvent } from "../domain/ledger/events.ts"
import { GENESIS_COVENANT } from "../domain/ledger/genesis.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"

const EVENTS = Number(process.env.BENCH_SEGMENT_EVENTS ?? 200_000)
const SEGMENT_BYTES = Number(process.env.BENCH_SEGMENT_BYTES ?? 8 << 20)
const CONCURRENCY = 64
const SAMPLES = 10
/** The stated bound: heap growth over the run, whatever its length. */
const MAX_GROWTH_MB = 16

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  // Heap figures need a full collection before each sample.
  const r = spawnSync(process.execPath, ["--expose-gc", ...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit" })
  process.exit(r.status ?? 1)
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits
const heapMB = () => {
  // Twice: what the first collection frees can hold more (finalizers, weak maps).
  gc!()
  gc!()
  return process.memoryUsage().heapUsed / (1 << 20)
}

const eventFor = (i: number): NewEvent =>
  i % 4 === 0
    ? newEvent("NodeRetired", { node: `n${i}` })
    : newEvent("ApiKeyIssued", { keyHash: sha256Hex(`key-${i}`), role: i % 2 === 0 ? "node" : "contributor" })
const streamFor = (i: number) => (i % 4 === 0 ? `node-n${i % 97}` : "keys")

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-segments-"))

const appendPhase = Effect.scoped(
  Effect.gen(function* () {
    const store = yield* makeFileEventStore(dir, { segmentBytes: SEGMENT_BYTES })
    yield* store.append("chain-A", [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)], "no_stream")
    const heap: number[] = []
    const per = Math.ceil(EVENTS / SAMPLES)
    const t0 = performance.now()
    for (let s = 0; s < SAMPLES; s++) {
      const from = 1 + s * per
      const to = Math.min(EVENTS, from + per - 1)
      yield* Effect.forEach(
        Array.from({ length: to - from + 1 }, (_, k) => from + k),
        (i) => store.append(streamFor(i), [eventFor(i)], "any"),
        { concurrency: CONCURRENCY, discard: true }
      )
      // Let the run's own fibers (this bench's forEach over a tenth of the events) wind down first.
      yield* Effect.sleep("100 millis")
      heap.push(round(heapMB()))
    }
    return { heapMB: heap, appendsPerSec: round(EVENTS / ((performance.now() - t0) / 1000)) }
  })
)

const readPhase = Effect.scoped(
  Effect.gen(function* () {
    const before = heapMB()
    const t0 = performance.now()
    const store = yield* makeFileEventStore(dir, { readOnly: true })
    const openS = (performance.now() - t0) / 1000
    const openHeapMB = heapMB() - before
    const heap: number[] = []
    const every = Math.ceil(EVENTS / SAMPLES)
    let n = 0
    const t1 = performance.now()
    yield* store.readAll(0).pipe(
      Stream.runForEach(() =>
        Effect.sync(() => {
          if (++n % every === 0) heap.push(round(heapMB()))
        })
      )
    )
    // The sampling GCs are included: a conservative whole-log read time, so a generous ratio for open.
    const readAllS = (performance.now() - t1) / 1000
    return { openS, openHeapMB: round(openHeapMB), events: n, readAllS, heapMB: heap }
  })
)

const growth = (xs: ReadonlyArray<number>) => round(Math.max(...xs) - xs[0]!)

const main = async () => {
  console.log(`(a) ${EVENTS} appends, ${CONCURRENCY} appenders, segments of ${SEGMENT_BYTES} bytes`)
  const a = await Effect.runPromise(appendPhase)
  const segments = fs.readdirSync(path.join(dir, "events")).filter((f) => f.endsWith(".seg"))
  const logBytes = segments.reduce((t, f) => t + fs.statSync(path.join(dir, "events", f)).size, 0)
  console.log(`  heap after each tenth (MB): ${a.heapMB.join(", ")}; growth ${growth(a.heapMB)} MB (bound ${MAX_GROWTH_MB} MB)`)
  console.log(`  ${segments.length} segments, ${round(logBytes / 1e6)} MB of log, ${a.appendsPerSec} appends/s`)
  const b = await Effect.runPromise(readPhase)
  console.log(`(b) read-only open: ${round(b.openS * 1000)} ms, +${b.openHeapMB} MB heap; readAll(0) of ${b.events} events: ${round(b.readAllS, 2)} s`)
  console.log(`    open / whole-log read = ${round(b.openS / b.readAllS, 4)}`)
  console.log(`(c) heap while streaming the log (MB): ${b.heapMB.join(", ")}; growth ${growth(b.heapMB)} MB (bound ${MAX_GROWTH_MB} MB)`)
  const ok = growth(a.heapMB) < MAX_GROWTH_MB && growth(b.heapMB) < MAX_GROWTH_MB && b.events === EVENTS + 1
  const result = {
    events: EVENTS,
    segmentBytes: SEGMENT_BYTES,
    segments: segments.length,
    logMB: round(logBytes / 1e6),
    maxGrowthMB: MAX_GROWTH_MB,
    append: { ...a, growthMB: growth(a.heapMB) },
    open: { ms: round(b.openS * 1000), heapMB: b.openHeapMB, ratioToWholeLogRead: round(b.openS / b.readAllS, 4) },
    readAll: { s: round(b.readAllS, 2), heapMB: b.heapMB, growthMB: growth(b.heapMB) },
    withinBound: ok
  }
  fs.mkdirSync(path.join(import.meta.dirname, "results"), { recursive: true })
  fs.writeFileSync(path.join(import.meta.dirname, "results", "segments.json"), JSON.stringify(result, null, 2) + "\n")
  fs.rmSync(dir, { recursive: true, force: true })
  if (!ok) {
    console.error(`heap grew past the ${MAX_GROWTH_MB} MB bound`)
    process.exitCode = 1
  }
}

await main()
