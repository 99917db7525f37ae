import { Effect, Either, Exit } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { BlobStore, type BlobStoreApi } from "../../domain/ports/blob-store.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { auditLedger } from "../../actors/auditor.ts"
import { defaultSpec, partNames } from "../../domain/model/spec.ts"
import { ModelProjection, expertsPendingUpdate } from "../../domain/projections/model.ts"
import { initLedger } from "../../actors/genesis.ts"
import { completeExpertUpdates, signParts } from "../../actors/model-ledger.ts"
import { pruneOrphanBlobs } from "../../actors/blob-gc.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { decideRecordTraining } from "../../domain/projections/model-deciders.ts"
import { initWeights } from "../../domain/model/init.ts"
import { crashingAfter, freshLedger, interleaving } from "../support/stores.ts"
import { contributorSeed, testLedgerKey, testTrust } from "../support/ledger.ts"
import { registerContributor } from "../../actors/contributors.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { logOf } from "../support/log.ts"

const on = (events: EventStoreApi, blobs: BlobStoreApi) => <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore>) =>
  eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))

/** The shape of a finished ledger: each expert stream, nothing pending, a clean replay; and each part's current payload. */
const checkComplete = (events: EventStoreApi, blobs: BlobStoreApi) =>
  Effect.gen(function* () {
    const log = yield* logOf(events, 0)
    const audit = yield* on(events, blobs)(auditLedger(testTrust))
    expect(audit.replay.firstBad).toBeUndefined()
    expect(audit.badBlobs).toEqual([])
    expect(audit.incomplete).toEqual([])
    const { state } = yield* on(events, blobs)(foldStream("*", ModelProjection))
    expect(expertsPendingUpdate(state)).toEqual([])
    for (const [name, versions] of state.history) {
      if (!name.includes("expert")) continue
      const ref = /^layer(\d+)\.expert(\d+)$/.exec(name)!
      const updates = log.filter((e) => e.stream === Streams.expert(Number(ref[1]), Number(ref[2])))
      // Exactly one ExpertUpdated per version, in chain-B order: nothing recorded twice.
      expect(updates.map((e) => (e.data as { block: string }).block)).toEqual(versions.map((v) => v.block))
    }
    return { log, current: new Map([...state.current].map(([n, c]) => [n, c.payload])) }
  })

describe("publishing the genesis model", () => {
  it.scoped("cut off by a crash after any number of appends, is finished by running it again, recording nothing twice (property)", () =>
    Effect.gen(function* () {
      const reference = yield* freshLedger()
      yield* on(reference.events, reference.blobs)(initLedger(defaultSpec))
      const expected = yield* checkComplete(reference.events, reference.blobs)
      expect(expected.current.size).toBe(partNames(defaultSpec).length)
      const appends = 3 + 32 // genesis, spec, chain B, then one per expert stream

      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: appends }), async (survive) => {
            await Effect.runPromise(
              Effect.scoped(
                Effect.gen(function* () {
                  const { events, blobs } = yield* freshLedger()
                  const crashed = yield* Effect.exit(on(crashingAfter(events, survive), blobs)(initLedger(defaultSpec)))
                  expect(Exit.isFailure(crashed)).toBe(survive < appends)
                  const again = yield* on(events, blobs)(initLedger(defaultSpec))
                  expect(again.recorded).toBe(survive < appends)
                  const done = yield* checkComplete(events, blobs)
                  expect(done.current).toEqual(expected.current)
                  const head = yield* events.head
                  const third = yield* on(events, blobs)(initLedger(defaultSpec))
                  expect(third.recorded).toBe(false)
                  expect(yield* events.head).toEqual(head)
                })
              )
            )
          }),
          { numRuns: 8 }
        )
      )
    })
  )

  it.scoped("run twice at once, publishes one model", () =>
    Effect.gen(function* () {
      const { events, blobs } = yield* freshLedger()
      const shared = interleaving(events)
      yield* Effect.all([initLedger(defaultSpec), initLedger(defaultSpec)], { concurrency: "unbounded" }).pipe(on(shared, blobs))
      const done = yield* checkComplete(events, blobs)
      expect(done.log.filter((e) => e.type === "BlockAppended")).toHaveLength(partNames(defaultSpec).length)
      expect(done.log.filter((e) => e.type === "ModelSpecPublished")).toHaveLength(1)
    })
  )
})

describe("recording training results", () => {
  it.scoped("of two runs from the same base, only the first is recorded; the second is refused as stale", () =>
    Effect.gen(function* () {
      const { events, blobs } = yield* freshLedger()
      const run = on(interleaving(events), blobs)
      yield* run(initLedger(defaultSpec))
      for (const n of [1, 2]) yield* run(registerContributor(keyPairFromSeed(contributorSeed(n)).publicKey, testLedgerKey))
      const { state } = yield* run(foldStream("*", ModelProjection))
      const weights = initWeights({ ...defaultSpec, seed: defaultSpec.seed + 1 })
      const result = (seed: string) =>
        Effect.gen(function* () {
          const parts = ["layer0.expert0", "layer1.expert3"].map((n) => weights.parts.get(n)!)
          const blocks = yield* signParts(parts, (n) => [state.current.get(n)!.block], seed)
          const outcome = { steps: 1, corpus: "a".repeat(64), heldOut: null, trainLossBefore: 2, trainLossAfter: 1, heldOutLossBefore: 2, heldOutLossAfter: 1 }
          yield* handleCommand({ stream: Streams.chainB, projection: ModelProjection, reads: "log", decide: (s) => decideRecordTraining(s, blocks, outcome) })
          return yield* completeExpertUpdates
        })
      const both = yield* Effect.all([Effect.either(result(contributorSeed(1))), Effect.either(result(contributorSeed(2)))], { concurrency: "unbounded" }).pipe(run)
      expect(both.filter(Either.isRight)).toHaveLength(1)
      const refused = both.find(Either.isLeft)!
      expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "ModelRefused", kind: "StaleBase" })
      const done = yield* checkComplete(events, blobs)
      expect(done.log.filter((e) => e.type === "ModelTrained")).toHaveLength(1)
      expect(done.log.filter((e) => e.stream === Streams.expert(1, 3))).toHaveLength(2)
    })
  )
})

describe("orphan blobs", () => {
  it.scoped("payloads stored by a writer killed before its append are found, and pruned past the grace period only", () =>
    Effect.gen(function* () {
      const { events, blobs } = yield* freshLedger()
      const run = on(events, blobs)
      yield* run(initLedger(defaultSpec))
      const weights = initWeights({ ...defaultSpec, seed: defaultSpec.seed + 7 })
      // A run that stored its payloads and was killed before recording them.
      yield* run(signParts([weights.parts.get("layer0.expert0")!], () => ["0".repeat(64)], contributorSeed(1)))
      const orphans = (yield* run(auditLedger())).orphans
      expect(orphans).toHaveLength(1)
      expect(yield* run(pruneOrphanBlobs())).toEqual([])
      expect(yield* run(pruneOrphanBlobs(0))).toEqual(orphans)
      expect((yield* run(auditLedger())).orphans).toEqual([])
      yield* checkComplete(events, blobs)
    })
  )
})
