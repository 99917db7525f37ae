/**
 * Ledger benchmarks (run: `npx tsx bench/ledger.ts`), each against a baseline measured in the
 * same run, written to bench/results/ledger.json:
 *
 * (a) appends/s of the file event store with group commit (many concurrent appenders), against
 *     a naive writer that frames the same records and fsyncs after every event;
 * (b) audit verification: MB/s to read, parse and verify the hash chain of a ~20 MB log (a
 *     read-only open of the file store), against a raw sha256 over the same bytes.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Either, Stream } from "effect"
import { makeFileEventStore, segmentPath } from "../adapters/eventstore/file.ts"
import { encodeAppend } from "../adapters/eventstore/file-format.ts"
import { prepareEvent, sealBatch, type Envelope, type Head } from "../domain/ledger/envelope.ts"
import { newEvent, type NewEvent } from "../domain/ledger/events.ts"
import { GENESIS_COVENANT, genesisEnvelope } from "../domain/ledger/genesis.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"

const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64)
const AUDIT_MB = Number(process.env.BENCH_AUDIT_MB ?? 20)
const REPEATS = 3

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-ledger-"))
const freshDir = () => fs.mkdtempSync(path.join(root, "d-"))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

const eventFor = (i: number): NewEvent =>
  i % 4 === 0
    ? newEvent("NodeRetired", { node: `n${i}` })
    : newEvent("ApiKeyIssued", { keyHash: sha256Hex(`key-${i}`), role: i % 2 === 0 ? "node" : "contributor" })
const streamFor = (i: number) => (i % 4 === 0 ? `node-n${i % 97}` : "keys")

/** Appends/s through the store: `concurrency` fibers share `EVENTS` single-event appends. */
const storeAppends = (concurrency: number) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* makeFileEventStore(freshDir())
        yield* store.append("chain-A", [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)], "no_stream")
        const t0 = performance.now()
        yield* Effect.forEach(
          Array.from({ length: EVENTS }, (_, i) => i + 1),
          (i) => store.append(streamFor(i), [eventFor(i)], "any"),
          { concurrency, discard: true }
        )
        const s = (performance.now() - t0) / 1000
        const head = yield* store.head
        if (head?.seq !== EVENTS) throw new Error(`expected head ${EVENTS}, got ${head?.seq}`)
        return EVENTS / s
      })
    )
  )

/** The baseline: the same validation, sealing and framing, then one write and one fsync per event. */
const naiveAppends = async () => {
  const file = path.join(freshDir(), "log.seg")
  const fh = await fs.promises.open(file, "w+")
  try {
    let head: Head | undefined
    let size = 0
    const write = async (envs: Envelope[]) => {
      const bytes = Buffer.concat(encodeAppend(envs))
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
    return EVENTS / ((performance.now() - t0) / 1000)
  } finally {
    await fh.close()
  }
}

/** A ~AUDIT_MB log written directly (sealed and framed like the store does), for (b). */
const buildAuditLog = () => {
  const dir = freshDir()
  fs.mkdirSync(path.join(dir, "events"))
  const fd = fs.openSync(segmentPath(dir), "w")
  let head: Head | undefined
  let bytes = 0
  let events = 0
  const at = "2025-02-01T00:00:00.000Z"
  const chunks: Buffer[] = []
  const flush = () => {
    fs.writeSync(fd, Buffer.concat(chunks))
    chunks.length = 0
  }
  for (let i = 0; bytes < AUDIT_MB * 1e6; i++) {
    const envs =
      i === 0 ? [genesisEnvelope()] : Either.getOrThrow(sealBatch(head, streamFor(i), [Either.getOrThrow(prepareEvent(streamFor(i), eventFor(i)))], at))
    for (const b of encodeAppend(envs)) {
      chunks.push(b)
      bytes += b.length
    }
    const last = envs[envs.length - 1]!
    head = { seq: last.seq, hash: last.hash }
    events += envs.length
    if (chunks.length >= 4096) flush()
  }
  flush()
  fs.closeSync(fd)
  return { dir, bytes, events }
}

const auditVerify = (dir: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const t0 = performance.now()
        const store = yield* makeFileEventStore(dir, { readOnly: true })
        const n = yield* Stream.runCount(store.readAll())
        return { n, s: (performance.now() - t0) / 1000 }
      })
    )
  )

const rawSha256 = (dir: string) => {
  const t0 = performance.now()
  const digest = crypto.createHash("sha256").update(fs.readFileSync(segmentPath(dir))).digest("hex")
  return { digest, s: (performance.now() - t0) / 1000 }
}

const main = async () => {
  console.log(`(a) ${EVENTS} appends: file store, ${CONCURRENCY} concurrent appenders (group commit) vs fsync per event`)
  const group: number[] = []
  const sequential: number[] = []
  const naive: number[] = []
  for (let r = 0; r < REPEATS; r++) {
    group.push(await storeAppends(CONCURRENCY))
    sequential.push(await storeAppends(1))
    naive.push(await naiveAppends())
    console.log(`  run ${r + 1}: group ${round(group[r]!)} /s, store sequential ${round(sequential[r]!)} /s, naive ${round(naive[r]!)} /s`)
  }
  const a = {
    events: EVENTS,
    concurrency: CONCURRENCY,
    groupCommitAppendsPerSec: round(median(group)),
    storeSequentialAppendsPerSec: round(median(sequential)),
    naiveFsyncPerEventAppendsPerSec: round(median(naive)),
    ratioGroupToNaive: round(median(group) / median(naive), 2)
  }
  console.log(`  median: group commit ${a.groupCommitAppendsPerSec} /s vs naive ${a.naiveFsyncPerEventAppendsPerSec} /s: ${a.ratioGroupToNaive}x`)

  console.log(`(b) audit verification of a ~${AUDIT_MB} MB log vs raw sha256 over the same bytes`)
  const log = buildAuditLog()
  const verify: number[] = []
  const sha: number[] = []
  for (let r = 0; r < REPEATS; r++) {
    const v = await auditVerify(log.dir)
    if (v.n !== log.events) throw new Error(`verified ${v.n} events, wrote ${log.events}`)
    verify.push(log.bytes / 1e6 / v.s)
    sha.push(log.bytes / 1e6 / rawSha256(log.dir).s)
    console.log(`  run ${r + 1}: verify ${round(verify[r]!)} MB/s, raw sha256 ${round(sha[r]!)} MB/s`)
  }
  const b = {
    logBytes: log.bytes,
    events: log.events,
    verifyMBps: round(median(verify)),
    rawSha256MBps: round(median(sha)),
    ratioVerifyToSha256: round(median(verify) / median(sha), 3)
  }
  console.log(`  median: verify ${b.verifyMBps} MB/s vs sha256 ${b.rawSha256MBps} MB/s: ${b.ratioVerifyToSha256}x`)

  const result = {
    bench: "ledger",
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, node: process.version },
    note: "medians of 3 runs; fsync cost depends on the filesystem under os.tmpdir()",
    filesystemDir: os.tmpdir(),
    appends: a,
    audit: b
  }
  const out = path.join(path.dirname(new URL(import.meta.url).pathname), "results", "ledger.json")
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + "\n")
  console.log(`wrote ${out}`)
}

main()
  .finally(() => fs.rmSync(root, { recursive: true, force: true }))
  .catch((e) => {
    console.error(e)
    process.exit(1)
  })
