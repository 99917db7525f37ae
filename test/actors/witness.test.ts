import { Effect, Either, Exit, Schedule, Scope, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { auditLedger } from "../../actors/auditor.ts"
import { ensureGenesis } from "../../actors/genesis.ts"
import { logTreeHead, signLogHead, trackTreeHead } from "../../actors/tree-heads.ts"
import { askBlockProofs, serveTreeHeads } from "../../actors/tree-head-service.ts"
import { pollWitnesses, runWitness } from "../../actors/witness.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { makeMemoryTreeHeadStore } from "../../adapters/tree-heads/memory.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { TreeHeadStore, type TreeHeadStoreApi } from "../../domain/ports/tree-head-store.ts"
import { seal } from "../../domain/ledger/envelope.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { openTreeHead, witnessesOf, witnessKeyName } from "../../domain/ledger/tree-head.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { logOf } from "../support/log.ts"
import { freshLedger } from "../support/stores.ts"
import { tinySpec } from "../domain/model/support.ts"
import { initLedger } from "../../actors/genesis.ts"
import { foldStream } from "../../actors/command.ts"
import { verifyBlockProofs } from "../../actors/block-proofs.ts"
import { proveConsistency } from "../../actors/log-proofs.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { tempDir } from "../support/tmp.ts"

const ledgerKey = keyPairFromSeed(sha256Hex("the witnessed ledger's key"))

/** `check`'s first value that is `done`, asked every 10 ms for at most 10 s. */
const until = <A, E, R>(check: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  check.pipe(
    Effect.filterOrFail(done, () => "not yet" as const),
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("10 seconds")))
  )

/** The heads a witness's store holds co-signed by it. */
const cosigned = (heads: TreeHeadStoreApi, publicKey: string) =>
  Effect.map(heads.all, (notes) =>
    notes.flatMap((n) => {
      const h = openTreeHead(n, [{ name: witnessKeyName(publicKey), publicKey }])
      return h._tag === "Right" ? [h.right] : []
    })
  )
const cosignedSizes = (heads: TreeHeadStoreApi, publicKey: string) => Effect.map(cosigned(heads, publicKey), (hs) => hs.map((h) => h.size))

describe("witnesses", () => {
  it.scopedLive("two witnesses co-sign each head that extends the last; a rewritten log gathers no signature, and both record and report the fork", () =>
    Effect.gen(function* () {
      const bus: BusApi = yield* makeMemoryBus()
      const ledgerHeads = makeMemoryTreeHeadStore()
      const events = yield* makeMemoryEventStore()
      const ledger = (store: EventStoreApi) => <A, E, R>(eff: Effect.Effect<A, E, R>) =>
        eff.pipe(Effect.provideService(EventStore, store), Effect.provideService(TreeHeadStore, ledgerHeads), Effect.provideService(Bus, bus))
      yield* ledger(events)(ensureGenesis)
      const grow = (store: EventStoreApi, n: number) => Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => store.append(Streams.node(`n${i}`), [newEvent("NodeRetired", { node: `n${i}` })], "any"))
      yield* grow(events, 3)
      yield* ledger(events)(signLogHead(ledgerKey, logTreeHead))
      const serving = yield* Scope.make()
      // The holder proves from the tree it keeps; it catches up with appends made past it.
      const tracked = yield* trackTreeHead.pipe(Effect.provideService(EventStore, events))
      yield* ledger(events)(serveTreeHeads(ledgerKey.publicKey, tracked.consistency)).pipe(Scope.extend(serving))

      const reports: string[] = []
      yield* Effect.forkScoped(Stream.runForEach(yield* bus.subscribe(Subjects.witnessFork), (m) => Effect.sync(() => void reports.push(new TextDecoder().decode(m.data)))))
      const witnesses = yield* Effect.forEach([1, 2], (i) =>
        Effect.gen(function* () {
          const w = { key: keyPairFromSeed(sha256Hex(`witness ${i}`)), events: yield* makeMemoryEventStore(), heads: makeMemoryTreeHeadStore(), status: [] as string[] }
          yield* Effect.forkScoped(
            runWitness({ key: w.key, ledger: ledgerKey.publicKey, intervalMs: 20, timeoutMs: 2000, onStatus: (l) => void w.status.push(l) }).pipe(
              Effect.provideService(Bus, bus),
              Effect.provideService(EventStore, w.events),
              Effect.provideService(TreeHeadStore, w.heads)
            )
          )
          return w
        })
      )
      const witnessedUpTo = (size: number) => Effect.forEach(witnesses, (w) => until(cosignedSizes(w.heads, w.key.publicKey), (s) => s.includes(size)))
      yield* witnessedUpTo(4)
      yield* grow(events, 2)
      yield* ledger(events)(signLogHead(ledgerKey, logTreeHead))
      yield* witnessedUpTo(6)
      // The ledger keeps the head with both witnesses' signatures; a poll gets each witness's latest.
      const merged = yield* until(ledgerHeads.all, (notes) => witnessesOf(notes[notes.length - 1]!).length === 2)
      expect([...witnessesOf(merged[merged.length - 1]!)].sort()).toEqual(witnesses.map((w) => w.key.publicKey).sort())
      const polled = yield* pollWitnesses(300).pipe(Effect.provideService(Bus, bus))
      expect(polled.map((p) => p.witness).sort()).toEqual(witnesses.map((w) => w.key.publicKey).sort())

      // Whoever holds the ledger's key rewrites seq 2, re-chains, grows the log and signs its head.
      yield* Scope.close(serving, Exit.void)
      const log = yield* logOf(events)
      const rewritten = log.reduce<ReturnType<typeof seal>[]>((out, e) => {
        const { hash: _, ...rest } = e
        out.push(seal({ ...rest, data: e.seq === 2 ? { node: "someone-else" } : e.data, stream: e.seq === 2 ? Streams.node("someone-else") : e.stream, prev: e.seq === 0 ? e.prev : out[e.seq - 1]!.hash }))
        return out
      }, [])
      const forged = yield* makeMemoryEventStore(rewritten)
      yield* grow(forged, 1)
      yield* ledger(forged)(signLogHead(ledgerKey, logTreeHead))
      yield* ledger(forged)(serveTreeHeads(ledgerKey.publicKey, proveConsistency))
      for (const w of witnesses) {
        const own = yield* until(logOf(w.events), (l) => l.some((e) => e.type === "TreeHeadForked"))
        const fork = own.find((e) => e.type === "TreeHeadForked")!.data as { reason: string; witnessed: string; offered: string }
        expect(fork.reason).toMatch(/is not shown to extend the 6 witnessed .*: its first events were rewritten/)
        expect(openTreeHead(fork.offered, [{ name: `blyan-ledger-${ledgerKey.publicKey.slice(0, 16)}`, publicKey: ledgerKey.publicKey }])).toMatchObject({ right: { size: 7 } })
        expect(yield* cosignedSizes(w.heads, w.key.publicKey)).toEqual([4, 6])
      }
      yield* until(Effect.sync(() => reports.length), (n) => n >= 2)
      expect(reports.map((r) => JSON.parse(r).witness).sort()).toEqual(witnesses.map((w) => w.key.publicKey).sort())
      // Reported once each, however often the forged head is offered again.
      yield* Effect.sleep("200 millis")
      for (const w of witnesses) expect((yield* logOf(w.events)).filter((e) => e.type === "TreeHeadForked")).toHaveLength(1)
      // The witnesses' copies hold the forged log to its past, whatever its own store says.
      const witnessedHeads = yield* cosigned(witnesses[0]!.heads, witnesses[0]!.key.publicKey)
      const blobs = yield* makeFileBlobStore(tempDir())
      const audit = yield* auditLedger({ heads: witnessedHeads }).pipe(Effect.provideService(EventStore, forged), Effect.provideService(BlobStore, blobs))
      expect(audit.heads.contradicted).toHaveLength(2)
      expect(audit.heads.contradicted[0]).toMatch(/the log was rewritten$/)
    })
  )

  it.scopedLive("the ledger's holder proves blocks on its log over the bus: the proofs check against its signed head, and a block it does not hold is refused", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const { events, blobs } = yield* freshLedger()
      const heads = makeMemoryTreeHeadStore()
      const on = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
        eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(TreeHeadStore, heads), Effect.provideService(Bus, bus))
      yield* on(initLedger(tinySpec))
      yield* on(signLogHead(ledgerKey, logTreeHead))
      yield* on(serveTreeHeads(ledgerKey.publicKey, proveConsistency))
      const { state } = yield* on(foldStream("*", ModelProjection))
      const blocks = [...state.current.values()].map((c) => c.block)
      const proofs = yield* on(askBlockProofs(blocks, 2000))
      expect(verifyBlockProofs(proofs, blocks, ledgerKey.publicKey)).toEqual(Either.right(expect.stringContaining(`${blocks.length} blocks are on the log`)))
      expect(Either.isLeft(verifyBlockProofs(proofs, [...blocks, "ab".repeat(32)], ledgerKey.publicKey))).toBe(true)
      const refused = yield* Effect.flip(on(askBlockProofs(["ab".repeat(32)], 2000)))
      expect(refused.message).toContain(`block ${"ab".repeat(32)} is not among the`)
    })
  )
})
