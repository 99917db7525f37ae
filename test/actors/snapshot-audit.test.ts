import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Option, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { BlobStore, type BlobStoreApi } from "../../domain/ports/blob-store.ts"
import { SnapshotStore, type Snapshot, type SnapshotStoreApi } from "../../domain/ports/snapshot-store.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { canonicalize } from "../../domain/ledger/jcs.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { ChainProjection } from "../../domain/projections/chain.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { NodesProjection } from "../../domain/projections/nodes.ts"
import { PlansProjection } from "../../domain/projections/plans.ts"
import type { Projection } from "../../domain/projections/projection.ts"
import { makeMemorySnapshotStore } from "../../adapters/snapshots/memory.ts"
import { makeFileSnapshotStore, snapshotsDir } from "../../adapters/snapshots/file.ts"
import { auditLedger } from "../../actors/auditor.ts"
import { foldStream, SnapshotEvery } from "../../actors/command.ts"
import { initLedger } from "../../actors/genesis.ts"
import { keyIssued } from "../support/events.ts"
import { freshLedger } from "../support/stores.ts"
import { tempDir } from "../support/tmp.ts"

const projections: ReadonlyArray<Projection<any, unknown>> = [ChainProjection, ModelProjection, NodesProjection, PlansProjection]

const on = (events: EventStoreApi, blobs: BlobStoreApi, snapshots?: SnapshotStoreApi) => <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore>): Effect.Effect<A, E> => {
  const run = eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(SnapshotEvery, 1))
  return snapshots ? Effect.provideService(run, SnapshotStore, snapshots) : run
}

const node = (n: number) =>
  newEvent("NodeRegistered", { node: `n${n}`, publicKey: keyPairFromSeed(sha256Hex(`node-${n}`)).publicKey, keyHash: sha256Hex(`key-${n}`), device: "cpu", memory: 1e9, speed: n + 1 })

/**
 * A ready ledger with keys and nodes, snapshots of every whole-log projection taken half-way,
 * and more events after them.
 */
const ledgerWithSnapshots = (snapshots: SnapshotStoreApi) =>
  Effect.gen(function* () {
    const { events, blobs } = yield* freshLedger()
    const run = on(events, blobs, snapshots)
    yield* run(initLedger(defaultSpec))
    for (let i = 0; i < 4; i++) yield* events.append(Streams.node(`n${i}`), [node(i)], "any")
    yield* events.append(Streams.keys, [keyIssued(1), keyIssued(2)], "any")
    for (const p of projections) yield* run(foldStream("*", p))
    for (let i = 4; i < 6; i++) yield* events.append(Streams.node(`n${i}`), [node(i)], "any")
    yield* events.append(Streams.keys, [keyIssued(3)], "any")
    return { events, blobs, run }
  })

const load = (snapshots: SnapshotStoreApi, name: string) => Effect.map(snapshots.load(name), Option.getOrThrow)

describe("the audit's check of projection snapshots", () => {
  it.scoped("verifies every honest snapshot against the replay at its seq, in the audit's one read of the log", () =>
    Effect.gen(function* () {
      const snapshots = makeMemorySnapshotStore()
      const { events, blobs } = yield* ledgerWithSnapshots(snapshots)
      let read = 0
      const counted: EventStoreApi = { ...events, readAll: (from) => Stream.mapChunks(events.readAll(from), (c) => ((read += c.length), c)) }
      const report = yield* on(counted, blobs, snapshots)(auditLedger())
      expect(report.replay.firstBad).toBeUndefined()
      expect(report.snapshots.bad).toEqual([])
      expect(report.snapshots.unchecked).toEqual([])
      expect(report.snapshots.verified.map((v) => v.projection).sort()).toEqual(["chain", "model", "nodes", "plans"])
      expect(read).toBe(report.replay.events)
    })
  )

  it.scoped("reports and removes a snapshot whose state, stream counts, log or version is wrong, without failing a good ledger", () =>
    Effect.gen(function* () {
      const snapshots = makeMemorySnapshotStore()
      const { events, blobs, run } = yield* ledgerWithSnapshots(snapshots)
      const full = Object.fromEntries(
        yield* Effect.forEach(projections, (p) => Effect.map(on(events, blobs)(foldStream("*", p)), (r) => [p.name, canonicalize(Either.getOrThrow(p.snapshot!.encode(r.state)))] as const))
      )
      const nodes = yield* load(snapshots, "nodes")
      yield* snapshots.save({ ...nodes, state: (nodes.state as Array<[string, { speed: number }]>).map(([k, v]) => [k, { ...v, speed: 1e9 }]) })
      const model = yield* load(snapshots, "model")
      yield* snapshots.save({ ...model, streams: { ...model.streams, keys: 99 } })
      const chain = yield* load(snapshots, "chain")
      const otherHash = (yield* Stream.runHead(events.readAll(chain.seq - 1))).pipe(Option.getOrThrow).hash
      yield* snapshots.save({ ...chain, hash: otherHash })
      const plans = yield* load(snapshots, "plans")
      yield* snapshots.save({ ...plans, version: 99 })
      // A snapshot of no projection kept from snapshots (keys are folded per stream).
      yield* snapshots.save({ ...plans, projection: "keys" })

      const report = yield* run(auditLedger())
      expect(report.replay.firstBad).toBeUndefined()
      expect(report.badBlobs).toEqual([])
      const bad = Object.fromEntries(report.snapshots.bad.map((b) => [b.projection, b]))
      expect(Object.keys(bad).sort()).toEqual(["chain", "keys", "model", "nodes", "plans"])
      expect(bad["nodes"]).toMatchObject({ problem: "differs", seq: nodes.seq, removed: true })
      expect(bad["nodes"]!.reason).toMatch(/holds a state other than the replay's/)
      expect(bad["model"]).toMatchObject({ problem: "differs", removed: true })
      expect(bad["model"]!.reason).toMatch(/stream counts/)
      expect(bad["chain"]).toMatchObject({ problem: "stale", removed: true })
      expect(bad["plans"]).toMatchObject({ problem: "foreign", removed: true })
      expect(bad["keys"]).toMatchObject({ problem: "foreign", removed: true })
      expect(report.snapshots.verified).toEqual([])
      expect((yield* snapshots.list).snapshots).toEqual([])

      // The next folds start from genesis, honest, and leave honest snapshots.
      for (const p of projections) {
        const r = yield* run(foldStream("*", p))
        expect(canonicalize(Either.getOrThrow(p.snapshot!.encode(r.state)))).toBe(full[p.name])
      }
      expect((yield* run(auditLedger())).snapshots.verified.length).toBe(4)
    })
  )

  it.scoped("leaves a snapshot taken after the audited head unchecked and in place: a writer may have saved it meanwhile", () =>
    Effect.gen(function* () {
      const snapshots = makeMemorySnapshotStore()
      const { run, events } = yield* ledgerWithSnapshots(snapshots)
      const head = (yield* events.head)!
      const later: Snapshot = { ...(yield* load(snapshots, "nodes")), seq: head.seq + 5, hash: sha256Hex("later") }
      yield* snapshots.save(later)
      const report = yield* run(auditLedger())
      expect(report.snapshots.unchecked).toEqual([{ projection: "nodes", seq: head.seq + 5 }])
      expect(report.snapshots.bad).toEqual([])
      expect(yield* load(snapshots, "nodes")).toEqual(later)
    })
  )

  it.scoped("reports and removes a snapshot file that cannot be read", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-snapshot-audit-")
      const snapshots = makeFileSnapshotStore(dir)
      const { run } = yield* ledgerWithSnapshots(snapshots)
      const file = path.join(snapshotsDir(dir), "model.json")
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").slice(0, 100))
      const report = yield* run(auditLedger())
      expect(report.replay.firstBad).toBeUndefined()
      expect(report.snapshots.bad).toEqual([expect.objectContaining({ projection: "model", problem: "unreadable", removed: true })])
      expect(report.snapshots.verified.length).toBe(3)
      expect(fs.existsSync(file)).toBe(false)
    })
  )
})
