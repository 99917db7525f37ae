import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { auditLedger } from "../../actors/auditor.ts"
import { proveConsistency, verifyLogProof } from "../../actors/log-proofs.ts"
import { initLedger } from "../../actors/genesis.ts"
import { trackTreeHead, logTreeHead, signLogHead, trustedHeads } from "../../actors/tree-heads.ts"
import { makeMemoryTreeHeadStore } from "../../adapters/tree-heads/memory.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { TreeHeadStore, type TreeHeadStoreApi } from "../../domain/ports/tree-head-store.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { ledgerKeyName } from "../../domain/ledger/tree-head.ts"
import { tinySpec } from "../domain/model/support.ts"
import { freshLedger } from "../support/stores.ts"

const key = keyPairFromSeed(sha256Hex("the ledger's key"))
const trusted = [{ name: ledgerKeyName(key.publicKey), publicKey: key.publicKey }]

describe("signing tree heads", () => {
  it.scopedLive("signs the head once per size, kept as the log grows; audit matches them, and holds another history to them", () =>
    Effect.gen(function* () {
      const { events, blobs } = yield* freshLedger()
      const heads: TreeHeadStoreApi = makeMemoryTreeHeadStore()
      const on = <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore | TreeHeadStore>) =>
        eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(TreeHeadStore, heads))
      yield* on(initLedger(tinySpec))
      const first = yield* on(signLogHead(key, logTreeHead))
      expect(first?.size).toBe(((yield* events.head)?.seq ?? -1) + 1)
      expect(yield* on(signLogHead(key, logTreeHead))).toBeUndefined()
      const tracked = yield* trackTreeHead.pipe(Effect.provideService(EventStore, events))
      const live = tracked.head
      // Its own appends, concurrent ones finishing in any order, and one it did not make.
      yield* Effect.forEach([1, 2, 3, 4, 5], (i) => tracked.store.append(Streams.node(`n${i}`), [newEvent("NodeRetired", { node: `n${i}` })], "any"), { concurrency: "unbounded" })
      yield* events.append(Streams.node("n6"), [newEvent("NodeRetired", { node: "n6" })], "any")
      yield* tracked.store.append(Streams.node("n7"), [newEvent("NodeRetired", { node: "n7" })], "any")
      expect(yield* live).toEqual(yield* on(logTreeHead))
      // Its consistency proofs are the ones read from the log.
      expect(yield* tracked.consistency(first!.size, first!.size + 7)).toEqual(yield* on(proveConsistency(first!.size)))
      expect(verifyLogProof(JSON.stringify(yield* tracked.consistency(3, first!.size + 7)))._tag).toBe("Right")
      expect((yield* live).size).toBe(first!.size + 7)
      yield* on(signLogHead(key, live))
      const { heads: signed, setAside } = yield* on(trustedHeads(trusted))
      expect(signed.map((h) => h.size)).toEqual([first!.size, first!.size + 7])
      expect(setAside).toEqual([])
      expect((yield* on(auditLedger({ heads: signed }))).heads).toEqual({ matched: 2, contradicted: [] })
      // Another ledger made the same way has other hashes from seq 1 on: the heads contradict it.
      const other = yield* freshLedger()
      yield* initLedger(tinySpec).pipe(Effect.provideService(EventStore, other.events), Effect.provideService(BlobStore, other.blobs))
      const audit = yield* auditLedger({ heads: signed }).pipe(Effect.provideService(EventStore, other.events), Effect.provideService(BlobStore, other.blobs))
      expect(audit.heads.matched).toBe(0)
      expect(audit.heads.contradicted[0]).toMatch(/the log was rewritten$/)
      expect(audit.heads.contradicted[1]).toMatch(/the log was cut short$/)
    })
  )
})
