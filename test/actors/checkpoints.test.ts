import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Logger, Option, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { makeMemorySnapshotStore } from "../../adapters/snapshots/memory.ts"
import { makeFileSnapshotStore, snapshotsDir } from "../../adapters/snapshots/file.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { SnapshotStore, SnapshotStoreFailure, type SnapshotStoreApi } from "../../domain/ports/snapshot-store.ts"
import { newEvent, type NewEvent } from "../../domain/ledger/events.ts"
import { GENESIS_COVENANT } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { canonicalize } from "../../domain/ledger/jcs.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { ChainProjection } from "../../domain/projections/chain.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { NodesProjection } from "../../domain/projections/nodes.ts"
import { PlansProjection } from "../../domain/projections/plans.ts"
import type { Projection } from "../../domain/projections/projection.ts"
import { foldStream, handleCommand, SnapshotEvery } from "../../actors/command.ts"
import { keyIssued } from "../support/events.ts"
import { scopedPropertyRunner } from "../support/property.ts"
import { eventsOf, arbitraryRichLog } from "../support/rich-log.ts"
import { tempDir } from "../support/tmp.ts"

const projections: ReadonlyArray<Projection<any, unknown>> = [ChainProjection, ModelProjection, NodesProjection, PlansProjection]

const appendAll = (store: EventStoreApi, pairs: ReadonlyArray<readonly [string, NewEvent]>) =>
  Effect.forEach(pairs, ([stream, e]) => store.append(stream, [e], "any"), { discard: true })

/** The store, counting every envelope a reader takes from `readAll`. */
const counting = (store: EventStoreApi) => {
  let read = 0
  const api: EventStoreApi = { ...store, readAll: (from) => Stream.mapChunks(store.readAll(from), (c) => ((read += c.length), c)) }
  return { api, read: () => read, reset: () => void (read = 0) }
}

const encoded = <S>(p: Projection<S, unknown>, s: S) => canonicalize(Either.getOrThrow(p.snapshot!.encode(s)))

/** Run with this event store, and with `snapshots` when given, saving after `every` events. */
const on =
  (events: EventStoreApi, snapshots?: SnapshotStoreApi, every = 1) =>
  <A, E>(eff: Effect.Effect<A, E, EventStore>): Effect.Effect<A, E> => {
    const run = eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(SnapshotEvery, every))
    return snapshots ? Effect.provideService(run, SnapshotStore, snapshots) : run
  }

/** Warnings logged while `eff` runs, with its result. */
const warnings = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: string[] = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") lines.push((Array.isArray(message) ? message : [message]).join(" "))
    })
    const a = yield* eff.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result: a, warnings: lines }
  })

const nodeRegistered = (id: string) =>
  newEvent("NodeRegistered", { node: id, publicKey: keyPairFromSeed(sha256Hex(id)).publicKey, keyHash: sha256Hex(`key-${id}`), device: "cpu", memory: 1e9, speed: 2 })

/** A log of `n` (at least 10) events after genesis: keys, with a node registered every tenth. */
const ledgerOf = (n: number): Effect.Effect<EventStoreApi> =>
  Effect.gen(function* () {
    const store = yield* makeMemoryEventStore()
    yield* store.append(Streams.chainA, [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)], "no_stream")
    for (let i = 0; i < n; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, n - i) }, (_, j) => i + j)
      yield* store.append(Streams.keys, batch.filter((x) => x % 10 !== 0).map(keyIssued), "any")
      for (const x of batch.filter((x) => x % 10 === 0)) yield* store.append(Streams.node(`n${x}`), [nodeRegistered(`n${x}`)], "any")
    }
    return store
  }).pipe(Effect.orDie)

describe("whole-log folds from snapshots", () => {
  it.effect("resuming from a snapshot taken anywhere gives the full fold's state and revisions (property)", () =>
    Effect.gen(function* () {
      const run = yield* scopedPropertyRunner
      const target = fc.constantFrom("keys", "node-n0", "node-n1", "node-n2")
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(arbitraryRichLog(), fc.nat(), fc.constantFrom(...projections), target, (log, cut, p, stream) =>
            run(
              Effect.gen(function* () {
                const k = 1 + (cut % log.length)
                const events = yield* makeMemoryEventStore(log.slice(0, k))
                const snapshots = makeMemorySnapshotStore()
                yield* on(events, snapshots)(foldStream("*", p))
                expect(Option.getOrThrow(yield* snapshots.load(p.name)).seq).toBe(k - 1)
                yield* appendAll(events, eventsOf(log).slice(k - 1))

                const resumed = yield* on(events, snapshots, Number.MAX_SAFE_INTEGER)(foldStream("*", p))
                const full = yield* on(events)(foldStream("*", p))
                expect(encoded(p, resumed.state)).toBe(encoded(p, full.state))
                expect(p.view(resumed.state)).toEqual(p.view(full.state))
                expect(resumed.revision).toBe(full.revision)

                // A decision that reads the log appends expecting the target stream's revision as the
                // snapshot and the tail give it: a wrong one fails at once (one attempt, no retry).
                const event = stream === "keys" ? keyIssued(1000 + cut) : newEvent("NodeRetired", { node: stream.slice("node-".length) })
                const r = yield* on(events, snapshots)(handleCommand({ stream, projection: p, reads: "log", decide: () => Either.right([event]) }, 1))
                expect(r?.revision).toBe((yield* events.read(stream)).length - 1)
              })
            )
          ),
          { numRuns: 80 }
        )
      )
    })
  )

  it.effect("a snapshot that does not match the log at its seq (another log) is discarded, never used (property)", () =>
    Effect.gen(function* () {
      const run = yield* scopedPropertyRunner
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(arbitraryRichLog(), arbitraryRichLog(), fc.constantFrom(...projections), (a, b, p) =>
            run(
              Effect.gen(function* () {
                const snapshots = makeMemorySnapshotStore()
                // The snapshot of log A, one key past its end, so that no log B can share its envelope there.
                const logA = yield* makeMemoryEventStore(a)
                yield* logA.append(Streams.keys, [keyIssued(-1)], "any")
                yield* on(logA, snapshots)(foldStream("*", p))
                const taken = Option.getOrThrow(yield* snapshots.load(p.name))

                const logB = yield* makeMemoryEventStore(b)
                const { result, warnings: said } = yield* warnings(on(logB, snapshots, Number.MAX_SAFE_INTEGER)(foldStream("*", p)))
                const full = yield* on(logB)(foldStream("*", p))
                expect(encoded(p, result.state)).toBe(encoded(p, full.state))
                expect(result.revision).toBe(full.revision)
                expect(said.join("\n")).toMatch(new RegExp(`snapshot ${p.name} does not match the log: .*seq ${taken.seq}`))
                expect(Option.isNone(yield* snapshots.load(p.name))).toBe(true)
              })
            )
          ),
          { numRuns: 40 }
        )
      )
    })
  )

  it.effect("a snapshot of the log as it was before it was re-created is replaced by one of the new log", () =>
    Effect.gen(function* () {
      const snapshots = makeMemorySnapshotStore()
      const old = yield* makeMemoryEventStore()
      yield* old.append(Streams.chainA, [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)], "no_stream")
      yield* old.append(Streams.keys, [keyIssued(1), keyIssued(2)], "any")
      yield* old.append(Streams.node("z"), [nodeRegistered("z")], "any")
      yield* on(old, snapshots)(foldStream("*", NodesProjection))
      expect(Option.getOrThrow(yield* snapshots.load("nodes")).seq).toBe(3)

      const recreated = yield* makeMemoryEventStore()
      yield* recreated.append(Streams.chainA, [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)], "no_stream")
      yield* recreated.append(Streams.keys, [keyIssued(7), keyIssued(8), keyIssued(9), keyIssued(10)], "any")
      yield* recreated.append(Streams.node("a"), [nodeRegistered("a")], "any")
      const r = yield* on(recreated, snapshots)(foldStream("*", NodesProjection))
      expect([...r.state.keys()]).toEqual(["a"])
      const now = Option.getOrThrow(yield* snapshots.load("nodes"))
      expect({ seq: now.seq, hash: now.hash }).toEqual({ seq: 5, hash: (yield* recreated.head)!.hash })
    })
  )

  it.effect("a snapshot that is unreadable, does not decode, or is of another codec version is discarded and rebuilt", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-checkpoints-")
      const snapshots = makeFileSnapshotStore(dir)
      const events = yield* ledgerOf(40)
      const full = yield* on(events)(foldStream("*", ModelProjection))
      const file = path.join(snapshotsDir(dir), "model.json")
      const honest = () => Effect.map(on(events, snapshots)(foldStream("*", ModelProjection)), (): any => JSON.parse(fs.readFileSync(file, "utf8")))
      const damage: Array<[string, (s: any) => string]> = [
        ["unreadable", (s) => JSON.stringify(s).slice(0, 30)],
        ["does not decode", (s) => JSON.stringify({ ...s, state: { ...s.state, current: "nothing" } })],
        ["another version", (s) => JSON.stringify({ ...s, version: s.version + 1 })]
      ]
      for (const [, alter] of damage) {
        fs.writeFileSync(file, alter(yield* honest()))
        const r = yield* on(events, snapshots)(foldStream("*", ModelProjection))
        expect(encoded(ModelProjection, r.state)).toBe(encoded(ModelProjection, full.state))
        // Rebuilt from genesis (40 events and more, past the threshold of 1) and saved again, whole.
        expect(Option.getOrThrow(yield* snapshots.load("model")).seq).toBe(full.revision)
      }
    })
  )

  it.effect("a command on a long log reads only the tail after the snapshot", () =>
    Effect.gen(function* () {
      const N = 20_000
      const base = yield* ledgerOf(N)
      const store = counting(base)
      const snapshots = makeMemorySnapshotStore()
      const command = (n: number) =>
        handleCommand({ stream: Streams.chainB, projection: ModelProjection, reads: "log", decide: () => Either.right([]) }).pipe(
          Effect.zipRight(handleCommand({ stream: Streams.keys, projection: ModelProjection, reads: "log", decide: () => Either.right([keyIssued(N + n)]) }))
        )
      // The default threshold: a fold of 1,000 events or more leaves a snapshot.
      const withDefaults = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, store.api), Effect.provideService(SnapshotStore, snapshots))
      yield* withDefaults(command(1))
      expect(store.read()).toBeGreaterThan(N)
      yield* base.append(Streams.keys, Array.from({ length: 10 }, (_, i) => keyIssued(2 * N + i)), "any")
      store.reset()
      yield* withDefaults(command(2))
      expect(store.read()).toBeLessThan(N / 100)
      expect(store.read()).toBeGreaterThan(0)

      // A tail longer than a read's chunk folds on as the full fold does, and leaves a newer snapshot.
      for (let i = 0; i < 9; i++) yield* base.append(Streams.keys, Array.from({ length: 1000 }, (_, j) => keyIssued(3 * N + 1000 * i + j)), "any")
      const resumed = yield* withDefaults(foldStream("*", ModelProjection))
      const full = yield* on(base)(foldStream("*", ModelProjection))
      expect(encoded(ModelProjection, resumed.state)).toBe(encoded(ModelProjection, full.state))
      expect(Option.getOrThrow(yield* snapshots.load("model")).seq).toBe(full.revision)
    })
  )

  it.effect("a snapshot is saved only after a fold of at least the threshold, and a failed save never fails the command", () =>
    Effect.gen(function* () {
      const events = yield* ledgerOf(30)
      const snapshots = makeMemorySnapshotStore()
      yield* on(events, snapshots, 100)(foldStream("*", ChainProjection))
      expect(Option.isNone(yield* snapshots.load("chain"))).toBe(true)
      yield* on(events, snapshots, 30)(foldStream("*", ChainProjection))
      expect(Option.isSome(yield* snapshots.load("chain"))).toBe(true)

      const full = yield* on(events)(foldStream("*", ChainProjection))
      const broken: SnapshotStoreApi = { ...makeMemorySnapshotStore(), save: () => Effect.fail(new SnapshotStoreFailure({ message: "disk full" })) }
      const { result, warnings: said } = yield* warnings(on(events, broken)(foldStream("*", ChainProjection)))
      expect(encoded(ChainProjection, result.state)).toBe(encoded(ChainProjection, full.state))
      expect(said).toEqual(["snapshot chain not saved: disk full"])
    })
  )

  it.effect("a tampered snapshot state that still names the log's hash is used by commands (they cannot tell without a replay): audit is what catches it", () =>
    Effect.gen(function* () {
      const events = yield* ledgerOf(20)
      const snapshots = makeMemorySnapshotStore()
      yield* on(events, snapshots)(foldStream("*", NodesProjection))
      const s = Option.getOrThrow(yield* snapshots.load("nodes"))
      const forged = (s.state as Array<[string, { speed: number }]>).map(([k, v]) => [k, { ...v, speed: 1e9 }])
      yield* snapshots.save({ ...s, state: forged })
      const r = yield* on(events, snapshots)(foldStream("*", NodesProjection))
      expect([...r.state.values()].every((n) => n.speed === 1e9)).toBe(true)
      // See test/actors/snapshot-audit.test.ts: the audit finds it, removes it, and the next fold is honest.
    })
  )
})
