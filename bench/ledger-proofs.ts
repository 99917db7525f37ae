/**
 * The ledger as a transparency log (run: `npx tsx bench/ledger-proofs.ts`), written to
 * bench/results/ledger-proofs.json:
 *
 * (a) proofs on a log of `BENCH_PROOF_EVENTS` (1,000,000) events written through the file store:
 *     the sizes of inclusion and consistency proofs, the time to take one from the log as
 *     `blyan proof` does (read the log, build the tree, prove) and from a tree already built, and
 *     the time to verify one; the tree's build against the baseline of the root-only accumulator;
 * (b) appends/s of the file store with `BENCH_CONCURRENCY` (64) concurrent single-event appenders
 *     with checkpoints on (the tree head kept as the store appends, `trackTreeHead`, and signed into
 *     the tree-head store every `BENCH_SIGN_MS` (100) ms, as `blyan up` does every 5 s) against off, alternated
 *     `BENCH_REPEATS` (5) times in the same run (goal: on/off ≥ 0.9).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Schedule, Stream } from "effect"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { makeFileTreeHeadStore } from "../adapters/tree-heads/file.ts"
import { proveConsistency, proveInclusion } from "../actors/log-proofs.ts"
import { signLogHead, trackTreeHead } from "../actors/tree-heads.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { TreeHeadStore } from "../domain/ports/tree-head-store.ts"
import { newEvent } from "../domain/ledger/events.ts"
import { GENESIS_COVENANT } from "../domain/ledger/genesis.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { envelopeLeaf, MerkleAccumulator, MerkleTree, toHex, verifyConsistency, verifyInclusion } from "../domain/ledger/merkle.ts"
import { keyPairFromSeed } from "../domain/ledger/signing.ts"
import { machineInfo, writeResults } from "./record.ts"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const PROOF_EVENTS = env("BENCH_PROOF_EVENTS", 1_000_000)
const APPENDS = env("BENCH_EVENTS", 20_000)
const CONCURRENCY = env("BENCH_CONCURRENCY", 64)
const SIGN_MS = env("BENCH_SIGN_MS", 100)
const REPEATS = env("BENCH_REPEATS", 5)
const SAMPLES = 200

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits
const time = async <A>(f: () => Promise<A> | A) => {
  const t0 = performance.now()
  const value = await f()
  return { value, ms: performance.now() - t0 }
}

const genesis = newEvent("GenesisCovenantSealed", GENESIS_COVENANT)
const eventFor = (i: number) => (i % 4 === 0 ? newEvent("NodeRetired", { node: `n${i}` }) : newEvent("ApiKeyIssued", { keyHash: sha256Hex(`key-${i}`), role: "node" }))
const streamFor = (i: number) => (i % 4 === 0 ? `node-n${i % 97}` : "keys")

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-proofs-"))
const run = <A, E>(eff: Effect.Effect<A, E, never>) => Effect.runPromise(eff)

/** A file log of `n` events, written in appends of 1000. */
const writeLog = (dir: string, n: number) =>
  run(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* makeFileEventStore(dir)
        yield* store.append("chain-A", [genesis], "no_stream")
        for (let from = 1; from < n; from += 1000) {
          const count = Math.min(1000, n - from)
          yield* store.append("keys", Array.from({ length: count }, (_, j) => newEvent("ApiKeyIssued", { keyHash: sha256Hex(`key-${from + j}`), role: "node" })), "any")
        }
      })
    )
  )

/** (a): proof sizes and times on a log of PROOF_EVENTS events. */
const proofs = async () => {
  const dir = path.join(root, "proofs")
  const generated = await time(() => writeLog(dir, PROOF_EVENTS))
  console.log(`  wrote a log of ${PROOF_EVENTS} events in ${round(generated.ms / 1000)} s`)
  const onStore = <A, E>(eff: Effect.Effect<A, E, EventStore>) =>
    run(Effect.scoped(Effect.flatMap(makeFileEventStore(dir, { readOnly: true }), (store) => Effect.provideService(eff, EventStore, store))))
  // As `blyan proof` does: read the whole log, build the tree, prove.
  const fromLog = await time(() => onStore(proveInclusion(Math.floor(PROOF_EVENTS / 3))))
  const consistencyFromLog = await time(() => onStore(proveConsistency(Math.floor(PROOF_EVENTS / 2))))
  // The tree over the same leaves, against the root-only accumulator the writer keeps.
  const leaves: Uint8Array[] = []
  await onStore(Effect.flatMap(EventStore, (s) => Stream.runForEach(s.readAll(0), (e) => Effect.sync(() => void leaves.push(envelopeLeaf(e.hash))))))
  const accumulator = await time(() => {
    const acc = new MerkleAccumulator()
    for (const l of leaves) acc.push(l)
    return acc.root()
  })
  const built = await time(() => MerkleTree.of(leaves))
  const tree = built.value
  const rootHex = toHex(tree.root())
  if (rootHex !== toHex(accumulator.value) || rootHex !== fromLog.value.root) throw new Error("the tree, the accumulator and the proof disagree on the root")
  const n = tree.size
  const pick = (i: number) => Math.floor(((i + 0.5) / SAMPLES) * n)
  const inclusionSizes: number[] = []
  const inclusionUs: number[] = []
  const inclusionVerifyUs: number[] = []
  const consistencySizes: number[] = []
  const consistencyUs: number[] = []
  const consistencyVerifyUs: number[] = []
  const rootDigest = tree.root()
  for (let i = 0; i < SAMPLES; i++) {
    const index = pick(i)
    const inc = await time(() => tree.inclusionProof(index, n))
    inclusionUs.push(inc.ms * 1000)
    inclusionSizes.push(inc.value.length * 32)
    const v = await time(() => verifyInclusion(leaves[index]!, index, n, inc.value, rootDigest))
    if (!v.value) throw new Error(`inclusion proof of ${index} does not verify`)
    inclusionVerifyUs.push(v.ms * 1000)
    const m = Math.max(1, index)
    const con = await time(() => tree.consistencyProof(m, n))
    consistencyUs.push(con.ms * 1000)
    consistencySizes.push(con.value.length * 32)
    const oldRoot = tree.root(m)
    const cv = await time(() => verifyConsistency(m, n, oldRoot, rootDigest, con.value))
    if (!cv.value) throw new Error(`consistency proof ${m}..${n} does not verify`)
    consistencyVerifyUs.push(cv.ms * 1000)
  }
  return {
    events: n,
    logBytes: fs.readdirSync(path.join(dir, "events")).reduce((s, f) => s + fs.statSync(path.join(dir, "events", f)).size, 0),
    inclusionProofBytes: { median: median(inclusionSizes), max: Math.max(...inclusionSizes) },
    consistencyProofBytes: { median: median(consistencySizes), max: Math.max(...consistencySizes) },
    fromLogSeconds: { inclusion: round(fromLog.ms / 1000, 2), consistency: round(consistencyFromLog.ms / 1000, 2) },
    fromTreeMicros: { inclusion: round(median(inclusionUs)), consistency: round(median(consistencyUs)) },
    verifyMicros: { inclusion: round(median(inclusionVerifyUs)), consistency: round(median(consistencyVerifyUs)) },
    treeBuildSeconds: round(built.ms / 1000, 2),
    accumulatorSeconds: round(accumulator.ms / 1000, 2),
    ratioTreeBuildToAccumulator: round(built.ms / accumulator.ms, 2),
    treeBytes: 2 * n * 32
  }
}

type Mode = "plain" | "tree" | "checkpoints"

/** (b): appends/s with `CONCURRENCY` appenders: the store alone, keeping the tree head, or keeping it and signing it. */
const appends = (mode: Mode) =>
  run(
    Effect.scoped(
      Effect.gen(function* () {
        const dir = fs.mkdtempSync(path.join(root, "a-"))
        const file = yield* makeFileEventStore(dir)
        yield* file.append("chain-A", [genesis], "no_stream")
        const key = keyPairFromSeed(sha256Hex("bench ledger key"))
        let signed = 0
        let store = file
        if (mode !== "plain") {
          const tracked = yield* Effect.provideService(trackTreeHead, EventStore, file)
          store = tracked.store
          const sign = signLogHead(key, tracked.head).pipe(
            Effect.tap((h) => Effect.sync(() => void (signed += h === undefined ? 0 : 1))),
            Effect.provideService(TreeHeadStore, makeFileTreeHeadStore(dir))
          )
          if (mode === "checkpoints") yield* Effect.forkScoped(Effect.repeat(sign, Schedule.spaced(`${SIGN_MS} millis`)))
        }
        const t0 = performance.now()
        yield* Effect.forEach(Array.from({ length: APPENDS }, (_, i) => i + 1), (i) => store.append(streamFor(i), [eventFor(i)], "any"), { concurrency: CONCURRENCY, discard: true })
        const s = (performance.now() - t0) / 1000
        return { perSec: APPENDS / s, signed }
      })
    )
  )

const main = async () => {
  console.log(`(b) appends: the store alone, keeping the tree head, and signing it every ${SIGN_MS} ms; ${REPEATS} runs each, alternated`)
  const runs: Record<Mode, number[]> = { plain: [], tree: [], checkpoints: [] }
  let signed = 0
  for (let r = 0; r < REPEATS; r++)
    for (const mode of ["plain", "tree", "checkpoints"] as const) {
      const result = await appends(mode)
      runs[mode].push(result.perSec)
      signed += result.signed
    }
  const [plain, tree, checkpoints] = [median(runs.plain), median(runs.tree), median(runs.checkpoints)]
  const appendsResult = {
    events: APPENDS,
    concurrency: CONCURRENCY,
    signEveryMs: SIGN_MS,
    headsSignedPerRun: round(signed / REPEATS),
    storeAlonePerSec: round(plain),
    treeKeptPerSec: round(tree),
    checkpointsPerSec: round(checkpoints),
    ratioCheckpointsOnToOff: round(checkpoints / tree, 3),
    ratioTreeToStoreAlone: round(tree / plain, 3)
  }
  console.log(
    `  store alone ${appendsResult.storeAlonePerSec}/s, tree kept ${appendsResult.treeKeptPerSec}/s, checkpoints signed ${appendsResult.checkpointsPerSec}/s: checkpoints on/off ${appendsResult.ratioCheckpointsOnToOff}x (goal >= 0.9), tree/store ${appendsResult.ratioTreeToStoreAlone}x`
  )
  console.log(`(a) proofs on a log of ${PROOF_EVENTS} events`)
  const proofsResult = await proofs()
  console.log(
    `  inclusion ${proofsResult.inclusionProofBytes.median} B (max ${proofsResult.inclusionProofBytes.max}), consistency ${proofsResult.consistencyProofBytes.median} B; from the log ${proofsResult.fromLogSeconds.inclusion} s, from the tree ${proofsResult.fromTreeMicros.inclusion} µs, verify ${proofsResult.verifyMicros.inclusion} µs`
  )
  writeResults("ledger-proofs", {
    bench: "ledger-proofs",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: "medians; proof times from the tree are per proof over 200 positions spread across the log",
    appends: appendsResult,
    proofs: proofsResult
  })
}

main()
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => fs.rmSync(root, { recursive: true, force: true }))
