/**
 * Projection checkpoints (run: `npx tsx bench/checkpoints.ts`), written to
 * bench/results/checkpoints.json: the time of a whole-log command on a file-store ledger of
 * `BENCH_EVENTS` (1,000,000) events after `blyan init`, folded from genesis (the baseline, no
 * snapshot store) against the same command resuming from its snapshot, with no new events and
 * with `BENCH_TAIL` (999, just under the save threshold) new events after the snapshot. Two
 * commands: the model's (`reads: "log"` on chain B, as `init` and `train` decide; small state)
 * and the node registry's fold (as `plan` resolves its cluster; its state grows with the log).
 *
 * The log is mostly inference receipts and rewards, with a node registered every 50 events.
 * The store is opened once, before the timings: what opening costs is reported apart, since a
 * snapshot spares the fold, not the open. `BENCH_REPEATS` (3) runs of each; medians reported.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Option, Runtime } from "effect"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"
import { makeFileSnapshotStore, snapshotsDir } from "../adapters/snapshots/file.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { SnapshotStore, type SnapshotStoreApi } from "../domain/ports/snapshot-store.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { defaultSpec } from "../domain/model/spec.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { decidePublishGenesis } from "../domain/projections/model-deciders.ts"
import { NodesProjection } from "../domain/projections/nodes.ts"
import { initLedger } from "../actors/genesis.ts"
import { foldStream, handleCommand } from "../actors/command.ts"
import { appendTraffic } from "./traffic.ts"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const EVENTS = env("BENCH_EVENTS", 1_000_000)
const TAIL = env("BENCH_TAIL", 999)
const REPEATS = env("BENCH_REPEATS", 3)

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

const seconds = async <A>(run: () => Promise<A>) => {
  const t0 = performance.now()
  const value = await run()
  return { s: (performance.now() - t0) / 1000, value }
}

const main = Effect.gen(function* () {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-checkpoints-"))
  try {
    const dir = path.join(root, "ledger")
    const blobs = yield* makeFileBlobStore(dir)
    const generated = yield* Effect.scoped(
      Effect.gen(function* () {
        const store = yield* makeFileEventStore(dir)
        const t0 = performance.now()
        yield* initLedger(defaultSpec).pipe(Effect.provideService(EventStore, store), Effect.provideService(BlobStore, blobs))
        yield* appendTraffic(store, 1, EVENTS + 1)
        return { head: (yield* store.head)!.seq, s: (performance.now() - t0) / 1000 }
      })
    )
    console.log(`generated ${generated.head + 1} events in ${generated.s.toFixed(1)} s`)

    return yield* Effect.scoped(
      Effect.gen(function* () {
        const t0 = performance.now()
        const store = yield* makeFileEventStore(dir)
        const openS = (performance.now() - t0) / 1000
        const runtime = yield* Effect.runtime<never>()
        const run = <A, E>(eff: Effect.Effect<A, E, EventStore>, snapshots?: SnapshotStoreApi) => {
          const withStore = eff.pipe(Effect.provideService(EventStore, store))
          return Runtime.runPromise(runtime)(snapshots ? Effect.provideService(withStore, SnapshotStore, snapshots) : withStore)
        }
        const commands: Record<"model" | "nodes", Effect.Effect<unknown, unknown, EventStore>> = {
          model: handleCommand({ stream: Streams.chainB, projection: ModelProjection, reads: "log", decide: (s) => decidePublishGenesis(s, []) }),
          nodes: foldStream("*", NodesProjection)
        }
        const timed = (eff: Effect.Effect<unknown, unknown, EventStore>, snapshots?: SnapshotStoreApi) =>
          Effect.promise(async () => {
            const xs: number[] = []
            for (let r = 0; r < REPEATS; r++) xs.push((await seconds(() => run(eff, snapshots))).s)
            return median(xs)
          })

        const results: Record<string, Record<string, number>> = {}
        const snapshotStores: Record<string, SnapshotStoreApi> = {}
        for (const [name, command] of Object.entries(commands)) {
          const snapshotsAt = path.join(root, `snapshots-${name}`)
          const snapshots = makeFileSnapshotStore(snapshotsAt)
          snapshotStores[name] = snapshots
          const fullS = yield* timed(command)
          const first = yield* Effect.promise(() => seconds(() => run(command, snapshots)))
          const saved = Option.getOrThrow(yield* snapshots.load(name))
          const snapshotBytes = fs.statSync(path.join(snapshotsDir(snapshotsAt), `${saved.projection}.json`)).size
          const resumeS = yield* timed(command, snapshots)
          results[name] = { fullFoldS: round(fullS), firstWithSaveS: round(first.s), snapshotSeq: saved.seq, snapshotBytes, resumeNoTailS: round(resumeS), ratioFullToResume: round(fullS / resumeS, 1) }
          console.log(`${name}: full fold ${fullS.toFixed(3)} s, first (fold + save) ${first.s.toFixed(3)} s, resume ${resumeS.toFixed(4)} s: ${(fullS / resumeS).toFixed(1)}x`)
        }

        // A tail just under the save threshold: the most a resumed command folds before saving again.
        const head = (yield* store.head)!.seq
        yield* appendTraffic(store, EVENTS + 1, EVENTS + 1 + TAIL)
        for (const [name, command] of Object.entries(commands)) {
          const tailS = yield* timed(command, snapshotStores[name]!)
          const after = Option.getOrThrow(yield* snapshotStores[name]!.load(name))
          if (after.seq > head) throw new Error(`a tail of ${TAIL} events saved a new snapshot: raise the threshold or lower BENCH_TAIL`)
          results[name] = { ...results[name]!, resumeWithTailS: round(tailS), ratioFullToResumeWithTail: round(results[name]!["fullFoldS"]! / tailS, 1) }
          console.log(`${name}: resume + ${TAIL}-event tail ${tailS.toFixed(4)} s: ${(results[name]!["fullFoldS"]! / tailS).toFixed(1)}x`)
        }
        return { events: generated.head + 1, generateS: round(generated.s, 1), openS: round(openS, 2), tail: TAIL, ...results }
      })
    )
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
})

const figures = await Effect.runPromise(main)
const result = {
  bench: "checkpoints",
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model.trim(), cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, node: process.version },
  note: `medians of ${REPEATS} runs; a whole-log command with no snapshot store (baseline) against the same command resuming from its file snapshot; the store is open before timing (openS is what opening it costs)`,
  ...figures
}
fs.mkdirSync(path.join(import.meta.dirname, "results"), { recursive: true })
fs.writeFileSync(path.join(import.meta.dirname, "results", "checkpoints.json"), JSON.stringify(result, null, 2) + "\n")
console.log(JSON.stringify(result, null, 2))
