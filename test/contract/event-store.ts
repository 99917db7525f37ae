import { Chunk, Effect, Either, Fiber, Stream, type Scope } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import type { EventStoreApi, ExpectedRevision } from "../../domain/ports/event-store.ts"
import { verifyChain, type Envelope } from "../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { genesisEvent, keyIssued } from "../support/events.ts"
import { scopedPropertyRunner } from "../support/property.ts"
import { logOf } from "../support/log.ts"

export type StoreFactory = () => Effect.Effect<EventStoreApi, unknown, Scope.Scope>


const verifyAll = (envs: ReadonlyArray<Envelope>) => expect(Either.isRight(verifyChain(envs))).toBe(true)

/**
 * The event store port's contract: every adapter runs exactly these tests. They run on the live
 * clock (`it.scopedLive`, `it.live`): adapters do real IO, and the file store's subscribe follows
 * the file by polling on the clock, which the TestClock would never advance.
 */
export const eventStoreContract = (name: string, factory: StoreFactory) =>
  describe(`EventStore contract: ${name}`, () => {
    it.scopedLive("starts empty and accepts only the genesis covenant as seq 0", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        expect(yield* store.head).toBeUndefined()
        const refused = yield* Effect.either(store.append("keys", [keyIssued(1)], "any"))
        expect(Either.isLeft(refused) && refused.left._tag).toBe("InvalidEvent")
        expect(yield* store.head).toBeUndefined()
        const r = yield* store.append("chain-A", [genesisEvent()], "no_stream")
        expect(r.head).toEqual({ seq: 0, hash: GENESIS_HASH })
        const again = yield* Effect.either(store.append("chain-A", [genesisEvent()], "any"))
        expect(Either.isLeft(again) && again.left._tag).toBe("InvalidEvent")
      })
    )

    it.scopedLive("appends atomically, reads streams and the whole log in order, as one hash chain", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        yield* store.append("chain-A", [genesisEvent()], "no_stream")
        const a = yield* store.append("keys", [keyIssued(1), keyIssued(2)], "no_stream")
        expect(a.revision).toBe(1)
        yield* store.append("node-n1", [newEvent("NodeRetired", { node: "n1" })], "no_stream")
        const b = yield* store.append("keys", [keyIssued(3)], 1)
        expect(b.revision).toBe(2)
        const keys = yield* store.read("keys")
        expect(keys.map((e) => e.seq)).toEqual([1, 2, 4])
        const all = yield* logOf(store)
        expect(all.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4])
        verifyAll(all)
        expect((yield* logOf(store, 3)).map((e) => e.seq)).toEqual([3, 4])
        expect(yield* store.read("rewards")).toEqual([])
        expect(yield* store.head).toEqual({ seq: 4, hash: all[4]!.hash })
      })
    )

    it.live("refuses a wrong expected revision and changes nothing (property)", () =>
      Effect.gen(function* () {
        const run = yield* scopedPropertyRunner
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc.integer({ min: 0, max: 4 }),
              fc.oneof(
                fc.constant<ExpectedRevision>("no_stream"),
                fc.constant<ExpectedRevision>("stream_exists"),
                fc.constant<ExpectedRevision>("any"),
                fc.integer({ min: -1, max: 6 })
              ),
              (existing, expected) =>
                run(
                  Effect.gen(function* () {
                    const store = yield* factory()
                    yield* store.append("chain-A", [genesisEvent()], "no_stream")
                    for (let i = 0; i < existing; i++) yield* store.append("keys", [keyIssued(i)], "any")
                    const before = yield* logOf(store)
                    const actual = existing - 1
                    const ok =
                      expected === "any" ||
                      (expected === "no_stream" && actual === -1) ||
                      (expected === "stream_exists" && actual >= 0) ||
                      expected === actual
                    const r = yield* Effect.either(store.append("keys", [keyIssued(99)], expected))
                    if (ok) {
                      expect(Either.isRight(r)).toBe(true)
                      expect((yield* logOf(store)).length).toBe(before.length + 1)
                    } else {
                      expect(Either.isLeft(r) && r.left._tag).toBe("WrongExpectedRevision")
                      expect(yield* logOf(store)).toEqual(before)
                    }
                  })
                )
            ),
            { numRuns: 25 }
          )
        )
      })
    )

    it.scopedLive("refuses invalid events with a typed error and writes nothing of the batch", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        yield* store.append("chain-A", [genesisEvent()], "no_stream")
        const bad = [
          { stream: "keys", event: { type: "NoSuchEvent", version: 1, data: {} } },
          { stream: "keys", event: { type: "ApiKeyIssued", version: 2, data: { keyHash: "0".repeat(64), role: "node" } } },
          { stream: "keys", event: { type: "ApiKeyIssued", version: 1, data: { keyHash: "xyz", role: "node" } } },
          { stream: "keys", event: { type: "ApiKeyIssued", version: 1, data: { keyHash: "0".repeat(64), role: "king" } } },
          { stream: "no such stream", event: keyIssued(1) }
        ]
        for (const { stream, event } of bad) {
          const r = yield* Effect.either(store.append(stream, [keyIssued(5), event as never], "any"))
          expect(Either.isLeft(r) && r.left._tag).toBe("InvalidEvent")
        }
        expect((yield* logOf(store)).length).toBe(1)
      })
    )

    it.scopedLive("serialises concurrent appends into one contiguous chain", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        yield* store.append("chain-A", [genesisEvent()], "no_stream")
        yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) => store.append(`node-n${i % 4}`, [newEvent("NodeRetired", { node: `n${i}` })], "any"),
          { concurrency: "unbounded" }
        )
        const all = yield* logOf(store)
        expect(all.length).toBe(41)
        verifyAll(all)
        for (let n = 0; n < 4; n++) expect((yield* store.read(`node-n${n}`)).length).toBe(10)
      })
    )

    it.scopedLive("lets exactly one of many concurrent no_stream appends win; the others fail alone", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        yield* store.append("chain-A", [genesisEvent()], "no_stream")
        const results = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) =>
            Effect.either(
              i % 2 === 0
                ? store.append("node-race", [newEvent("NodeRetired", { node: `n${i}` })], "no_stream")
                : store.append("keys", [keyIssued(i)], "any")
            ),
          { concurrency: "unbounded" }
        )
        const raced = results.filter((_, i) => i % 2 === 0)
        expect(raced.filter(Either.isRight).length).toBe(1)
        for (const r of raced) if (Either.isLeft(r)) expect(r.left._tag).toBe("WrongExpectedRevision")
        expect(results.filter((_, i) => i % 2 === 1).every(Either.isRight)).toBe(true)
        const all = yield* logOf(store)
        expect(all.length).toBe(1 + 1 + 6)
        verifyAll(all)
        expect((yield* store.read("node-race")).length).toBe(1)
      })
    )

    it.scopedLive("subscribe catches up, then follows live appends, without gap or duplicate", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        yield* store.append("chain-A", [genesisEvent()], "no_stream")
        for (let i = 0; i < 5; i++) yield* store.append("keys", [keyIssued(i)], "any")
        const fiber = yield* store.subscribe(2).pipe(Stream.take(10), Stream.runCollect, Effect.fork)
        for (let i = 5; i < 12; i++) yield* store.append("keys", [keyIssued(i)], "any")
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
        expect(seen.map((e) => e.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        expect(seen).toEqual((yield* logOf(store, 2)).slice(0, 10))
      })
    )
  })
