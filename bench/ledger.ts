/**
 * Ledger benchmarks (run: `npx tsx bench/ledger.ts`), each against a baseline measured in the
 * same run, written to bench/results/ledger.json:
 *
 * (a) appends/s of the file event store with `BENCH_CONCURRENCY` (64) concurrent single-event
 *     appenders (group commit), against a naive writer that validates and seals the same events
 *     and writes and fsyncs each on its own;
 * (b) verification: MB/s of `readAll(0)` over a log of `BENCH_AUDIT_MB` (1024) MB, or of
 *     `BENCH_AUDIT_EVENTS` events, against a raw sha256 over the same segment bytes; and the
 *     events/s of a whole `auditLedger` (verify, decode, replay) over the same log;
 * (c) the peak resident memory of each: every measurement runs in a child process of its own and
 *     reports its `maxRSS`.
 *
 * The audited log is written through the store's own append API (in large appends), so it holds
 * whatever layout the store uses. `BENCH_AUDIT_DIR` keeps it in that directory and reuses it on
 * the next run with the same size. `BENCH_EVENTS` (5000) sets the count of (a),
 * `BENCH_REPEATS` (3) the runs of each measurement (medians are reported), `BENCH_FULL_AUDIT=0`
 * skips `auditLedger`. `BENCH_BASELINE_REV=<git revision>` also measures (a) with the file store
 * of that revision (checked out in a temporary worktree), alternating with today's in the same
 * run, and reports today's appends/s as a multiple of it.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Effect, Either, Layer, Stream } from "effect"
import { FileEventStoreLive, makeFileEventStore } from "../adapters/eventstore/file.ts"
import { FileBlobStoreLive } from "../adapters/blobs/file.ts"
import { auditLedger } from "../actors/auditor.ts"
import { prepareEvent, sealBatch, type Envelope, type Head } from "../domain/ledger/envelope.ts"
import { newEvent, type NewEvent } from "../domain/ledger/events.ts"
import { GENESIS_COVENANT, genesisEnvelope } from "../domain/ledger/genesis.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const EVENTS = env("BENCH_EVENTS", 5000)
const CONCURRENCY = env("BENCH_CONCURRENCY", 64)
const AUDIT_MB = env("BENCH_AUDIT_MB", 1024)
const AUDIT_EVENTS = process.env.BENCH_AUDIT_EVENTS === undefined ? undefined : env("BENCH_AUDIT_EVENTS", 0)
const REPEATS = env("BENCH_REPEATS", 3)
const FULL_AUDIT = process.env.BENCH_FULL_AUDIT !== "0"
const BASELINE_REV = process.env.BENCH_BASELINE_REV
/** Events per append when writing the audited log. */
const GENERATE_BATCH = 1000

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits
const mb = (bytes: number) => round(bytes / 1e6)

/** The events of both benches: every fourth retires a node (in its node's stream), the rest issue API keys. */
const eventOf = (nodeEvent: boolean, i: number): NewEvent =>
  nodeEvent
    ? newEvent("NodeRetired", { node: `n${i}` })
    : newEvent("ApiKeyIssued", { keyHash: sha256Hex(`key-${i}`), role: i % 2 === 0 ? "node" : "contributor" })
const streamOf = (nodeEvent: boolean, i: number) => (nodeEvent ? `node-n${i % 97}` : "keys")
const eventFor = (i: number) => eventOf(i % 4 === 0, i)
const streamFor = (i: number) => streamOf(i % 4 === 0, i)

const genesis = newEvent("GenesisCovenantSealed", GENESIS_COVENANT)

// ---- measurements, each run in a child process (`--phase <name> <json args>`) ----

type Phases = {
  "appends-store": (a: { dir: string; concurrency: number; tree?: string }) => Promise<{ perSec: number }>
  "appends-naive": (a: { dir: string }) => Promise<{ perSec: number }>
  generate: (a: { dir: string; targetBytes: number; targetEvents: number | undefined }) => Promise<{ events: number; payloadBytes: number }>
  "read-all": (a: { dir: string }) => Promise<{ events: number; openS: number; readS: number }>
  sha256: (a: { files: ReadonlyArray<string> }) => Promise<{ bytes: number; s: number }>
  "full-audit": (a: { dir: string }) => Promise<{ events: number; firstBad: string | undefined; s: number }>
}

const phases: Phases = {
  /**
   * Appends/s through the store: `concurrency` fibers share `EVENTS` single-event appends. With
   * `tree`, the store is the one of that checkout (another revision of this repository).
   */
  "appends-store": async ({ dir, concurrency, tree }) => {
    const open: typeof makeFileEventStore =
      tree === undefined ? makeFileEventStore : (await import(path.join(tree, "adapters/eventstore/file.ts"))).makeFileEventStore
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* open(dir)
          yield* store.append("chain-A", [genesis], "no_stream")
          const t0 = performance.now()
          yield* Effect.forEach(
            Array.from({ length: EVENTS }, (_, i) => i + 1),
            (i) => store.append(streamFor(i), [eventFor(i)], "any"),
            { concurrency, discard: true }
          )
          const s = (performance.now() - t0) / 1000
          const head = yield* store.head
          if (head?.seq !== EVENTS) throw new Error(`expected head ${EVENTS}, got ${head?.seq}`)
          return { perSec: EVENTS / s }
        })
      )
    )
  },

  /** The baseline: the same validation and sealing, then one write and one fsync per event (JSON lines). */
  "appends-naive": async ({ dir }) => {
    const fh = await fs.promises.open(path.join(dir, "naive.log"), "w+")
    try {
      let head: Head | undefined
      let size = 0
      const write = async (envs: ReadonlyArray<Envelope>) => {
        const bytes = Buffer.from(envs.map((e) => JSON.stringify(e) + "\n").join(""))
        await fh.write(bytes, 0, bytes.length, size)
        await fh.datasync()
        size += bytes.length
        const last = envs[envs.length - 1]!
        head = { seq: last.seq, hash: last.hash }
      }
      await write([genesisEnvelope()])
      const t0 = performance.now()
      for (let i = 1; i <= EVENTS; i++) {
        const ev = Either.getOrThrow(prepareEvent(streamFor(i), eventFor(i)))
        await write(Either.getOrThrow(sealBatch(head, streamFor(i), [ev], new Date().toISOString())))
      }
      return { perSec: EVENTS / ((performance.now() - t0) / 1000) }
    } finally {
      await fh.close()
    }
  },

  /** Write the audited log through the store, in appends of GENERATE_BATCH events of one stream each. */
  generate: ({ dir, targetBytes, targetEvents }) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* makeFileEventStore(dir)
          yield* store.append("chain-A", [genesis], "no_stream")
          let events = 1
          let payloadBytes = 0
          let batch = 0
          const done = () => (targetEvents !== undefined ? events >= targetEvents : payloadBytes >= targetBytes)
          while (!done()) {
            // A few appends in flight, so that group commit writes them together.
            let left = targetEvents === undefined ? Infinity : targetEvents - events
            const appends: Array<{ stream: string; events: NewEvent[] }> = []
            for (let k = 0; k < 4 && left > 0; k++, batch++) {
              const count = Math.min(GENERATE_BATCH, left)
              left -= count
              const nodeEvents = batch % 4 === 0
              const first = batch * GENERATE_BATCH
              appends.push({ stream: streamOf(nodeEvents, batch), events: Array.from({ length: count }, (_, j) => eventOf(nodeEvents, first + j)) })
            }
            const results = yield* Effect.forEach(appends, (a) => store.append(a.stream, a.events, "any"), { concurrency: "unbounded" })
            for (const r of results) {
              events += r.envelopes.length
              for (const e of r.envelopes) payloadBytes += Buffer.byteLength(JSON.stringify(e))
            }
          }
          return { events, payloadBytes }
        })
      )
    ),

  /** Open the log read-only and stream it whole: every record verified on the way. */
  "read-all": ({ dir }) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const t0 = performance.now()
          const store = yield* makeFileEventStore(dir, { readOnly: true })
          const t1 = performance.now()
          const events = yield* Stream.runCount(store.readAll(0))
          return { events, openS: (t1 - t0) / 1000, readS: (performance.now() - t1) / 1000 }
        })
      )
    ),

  /** sha256 over the same files, read a chunk at a time as the store reads them. */
  sha256: async ({ files }) => {
    const t0 = performance.now()
    const h = crypto.createHash("sha256")
    const buf = Buffer.allocUnsafe(4 << 20)
    let bytes = 0
    for (const f of files) {
      const fd = fs.openSync(f, "r")
      try {
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, null)
          if (n === 0) break
          h.update(buf.subarray(0, n))
          bytes += n
        }
      } finally {
        fs.closeSync(fd)
      }
    }
    h.digest()
    return { bytes, s: (performance.now() - t0) / 1000 }
  },

  /** `blyan audit`'s work: verify the blobs, then replay and check every event from seq 0. */
  "full-audit": ({ dir }) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const t0 = performance.now()
        const report = yield* auditLedger()
        return { events: report.replay.events, firstBad: report.replay.firstBad?.reason, s: (performance.now() - t0) / 1000 }
      }).pipe(Effect.provide(Layer.merge(FileEventStoreLive(dir, { readOnly: true }), FileBlobStoreLive(dir))))
    )
}

type PhaseName = keyof Phases
type PhaseResult<P extends PhaseName> = Awaited<ReturnType<Phases[P]>> & { peakRssMB: number }

const RESULT = "BENCH-RESULT "

const runChild = async () => {
  const name = process.argv[3] as PhaseName
  const args = JSON.parse(process.argv[4]!)
  const out = await (phases[name] as (a: unknown) => Promise<object>)(args)
  // maxRSS is in kilobytes: the most this process ever had resident.
  console.log(RESULT + JSON.stringify({ ...out, peakRssMB: round(process.resourceUsage().maxRSS / 1024) }))
}

/** Run one measurement in a fresh process, so that its peak memory is its own. */
const phase = <P extends PhaseName>(name: P, args: Parameters<Phases[P]>[0]): PhaseResult<P> => {
  const self = fileURLToPath(import.meta.url)
  const r = spawnSync(process.execPath, [...process.execArgv, self, "--phase", name, JSON.stringify(args)], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "inherit"]
  })
  const line = r.stdout.split("\n").find((l) => l.startsWith(RESULT))
  if (r.status !== 0 || line === undefined) throw new Error(`bench phase ${name} failed (exit ${r.status}): ${r.stdout.slice(-2000)}`)
  return JSON.parse(line.slice(RESULT.length))
}

// ---- the run ----

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-ledger-"))
const freshDir = () => fs.mkdtempSync(path.join(root, "d-"))

/** Every file of the store's log: its segments (`events/**.seg`), or every file under `events/` if it has none by that name. */
const logFiles = (dir: string): string[] => {
  const all = (fs.readdirSync(path.join(dir, "events"), { recursive: true }) as string[])
    .map((f) => path.join(dir, "events", f))
    .filter((f) => fs.statSync(f).isFile())
    .sort()
  const segments = all.filter((f) => f.endsWith(".seg"))
  return segments.length > 0 ? segments : all
}

/** The audited log: generated here, or kept in BENCH_AUDIT_DIR and reused while its size is asked for again. */
const auditLog = () => {
  const kept = process.env.BENCH_AUDIT_DIR
  const dir = kept ?? freshDir()
  const want = { targetBytes: AUDIT_MB * 1e6, targetEvents: AUDIT_EVENTS }
  const marker = path.join(dir, "bench-ledger.json")
  if (fs.existsSync(marker)) {
    const made = JSON.parse(fs.readFileSync(marker, "utf8"))
    if (made.targetBytes === want.targetBytes && made.targetEvents === want.targetEvents) return { dir, ...made, reused: true }
    throw new Error(`${dir} holds a log generated for another size (${fs.readFileSync(marker, "utf8")}); remove it or choose another BENCH_AUDIT_DIR`)
  }
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new Error(`BENCH_AUDIT_DIR ${dir} is not empty and holds no bench log`)
  fs.mkdirSync(dir, { recursive: true })
  const t0 = performance.now()
  const g = phase("generate", { dir, ...want })
  const made = { ...want, events: g.events, payloadBytes: g.payloadBytes, generateS: round((performance.now() - t0) / 1000), generatePeakRssMB: g.peakRssMB }
  fs.writeFileSync(marker, JSON.stringify(made))
  return { dir, ...made, reused: false }
}

/** A detached worktree of `rev` sharing this checkout's node_modules; removed with the bench's temporary root. */
const baselineTree = (rev: string): string => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
  const tree = path.join(root, "baseline")
  execFileSync("git", ["-C", repo, "worktree", "add", "--detach", tree, rev], { stdio: "ignore" })
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(tree, "node_modules"))
  process.on("exit", () => {
    spawnSync("git", ["-C", repo, "worktree", "remove", "--force", tree], { stdio: "ignore" })
    spawnSync("git", ["-C", repo, "worktree", "prune"], { stdio: "ignore" })
  })
  return tree
}

const main = async () => {
  const machine = { cpu: os.cpus()[0]?.model ?? "unknown", cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, node: process.version }
  const tree = BASELINE_REV === undefined ? undefined : baselineTree(BASELINE_REV)
  console.log(`(a) ${EVENTS} appends: file store, ${CONCURRENCY} concurrent appenders (group commit) vs fsync per event`)
  const group: Array<PhaseResult<"appends-store">> = []
  const sequential: Array<PhaseResult<"appends-store">> = []
  const naive: Array<PhaseResult<"appends-naive">> = []
  const baseline: Array<PhaseResult<"appends-store">> = []
  for (let r = 0; r < REPEATS; r++) {
    group.push(phase("appends-store", { dir: freshDir(), concurrency: CONCURRENCY }))
    if (tree !== undefined) baseline.push(phase("appends-store", { dir: freshDir(), concurrency: CONCURRENCY, tree }))
    sequential.push(phase("appends-store", { dir: freshDir(), concurrency: 1 }))
    naive.push(phase("appends-naive", { dir: freshDir() }))
    const then = tree === undefined ? "" : `, ${BASELINE_REV}'s store ${round(baseline[r]!.perSec)} /s`
    console.log(`  run ${r + 1}: group ${round(group[r]!.perSec)} /s${then}, store sequential ${round(sequential[r]!.perSec)} /s, naive ${round(naive[r]!.perSec)} /s`)
  }
  const perSec = (xs: ReadonlyArray<{ perSec: number }>) => median(xs.map((x) => x.perSec))
  const appends = {
    events: EVENTS,
    concurrency: CONCURRENCY,
    groupCommitAppendsPerSec: round(perSec(group)),
    storeSequentialAppendsPerSec: round(perSec(sequential)),
    naiveFsyncPerEventAppendsPerSec: round(perSec(naive)),
    ratioGroupToNaive: round(perSec(group) / perSec(naive), 2),
    peakRssMB: Math.max(...group.map((g) => g.peakRssMB)),
    ...(tree === undefined
      ? {}
      : { baselineRevision: BASELINE_REV, baselineAppendsPerSec: round(perSec(baseline)), ratioToBaselineRevision: round(perSec(group) / perSec(baseline), 2) })
  }
  console.log(`  median: group commit ${appends.groupCommitAppendsPerSec} /s vs naive ${appends.naiveFsyncPerEventAppendsPerSec} /s: ${appends.ratioGroupToNaive}x`)
  if (tree !== undefined) console.log(`  median: ${appends.ratioToBaselineRevision}x the appends/s of ${BASELINE_REV}'s store (${appends.baselineAppendsPerSec} /s)`)

  const target = AUDIT_EVENTS !== undefined ? `${AUDIT_EVENTS} events` : `${AUDIT_MB} MB`
  console.log(`(b) verification of a log of ${target} (readAll(0)) vs raw sha256 of its segments`)
  const log = auditLog()
  const files = logFiles(log.dir)
  const logBytes = files.reduce((n, f) => n + fs.statSync(f).size, 0)
  console.log(`  log: ${log.events} events, ${mb(logBytes)} MB in ${files.length} file(s)${log.reused ? `, reused from ${log.dir}` : `, generated in ${log.generateS} s`}`)
  const reads: Array<PhaseResult<"read-all">> = []
  const shas: Array<PhaseResult<"sha256">> = []
  for (let r = 0; r < REPEATS; r++) {
    reads.push(phase("read-all", { dir: log.dir }))
    shas.push(phase("sha256", { files }))
    const read = reads[r]!
    if (read.events !== log.events) throw new Error(`read ${read.events} events, the log holds ${log.events}`)
    console.log(
      `  run ${r + 1}: readAll ${mb(logBytes / read.readS)} MB/s (open ${round(read.openS, 2)} s, peak RSS ${read.peakRssMB} MB), raw sha256 ${mb(shas[r]!.bytes / shas[r]!.s)} MB/s`
    )
  }
  const verifyMBps = median(reads.map((r) => logBytes / 1e6 / r.readS))
  const shaMBps = median(shas.map((s) => s.bytes / 1e6 / s.s))
  const audit = {
    logBytes,
    events: log.events,
    segmentFiles: files.length,
    verifyMBps: round(verifyMBps),
    openSeconds: round(median(reads.map((r) => r.openS)), 2),
    rawSha256MBps: round(shaMBps),
    ratioVerifyToSha256: round(verifyMBps / shaMBps, 3),
    peakRssMB: Math.max(...reads.map((r) => r.peakRssMB)),
    sha256PeakRssMB: Math.max(...shas.map((s) => s.peakRssMB))
  }
  console.log(`  median: verify ${audit.verifyMBps} MB/s vs sha256 ${audit.rawSha256MBps} MB/s: ${audit.ratioVerifyToSha256}x`)

  let fullAudit: object | undefined
  if (FULL_AUDIT) {
    const f = phase("full-audit", { dir: log.dir })
    if (f.firstBad !== undefined || f.events !== log.events) throw new Error(`auditLedger replayed ${f.events} events: ${f.firstBad}`)
    fullAudit = { events: f.events, seconds: round(f.s), eventsPerSec: round(f.events / f.s), MBps: round(logBytes / 1e6 / f.s), peakRssMB: f.peakRssMB }
    console.log(`  auditLedger: ${round(f.events / f.s)} events/s (${round(logBytes / 1e6 / f.s)} MB/s), peak RSS ${f.peakRssMB} MB`)
  }

  const result = {
    bench: "ledger",
    date: new Date().toISOString(),
    machine,
    note: `medians of ${REPEATS} runs, each in its own process (peak RSS is that process's maxRSS); fsync cost depends on the filesystem under os.tmpdir()`,
    filesystemDir: os.tmpdir(),
    appends,
    audit,
    fullAudit,
    generation: { seconds: log.generateS, peakRssMB: log.generatePeakRssMB, reused: log.reused }
  }
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), "results", "ledger.json")
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + "\n")
  console.log(`wrote ${out}`)
}

if (process.argv[2] === "--phase")
  runChild().catch((e) => {
    console.error(e)
    process.exit(1)
  })
else
  main()
    .finally(() => fs.rmSync(root, { recursive: true, force: true }))
    .catch((e) => {
      console.error(e)
      process.exit(1)
    })
