import { Effect, Either, type Scope } from "effect"
import { describe, expect, it } from "@effect/vitest"
import type { EventStoreApi, ReplicaApi } from "../../domain/ports/event-store.ts"
import { seal, type Envelope } from "../../domain/ledger/envelope.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { genesisEvent, keyIssued } from "../support/events.ts"
import { logOf } from "../support/log.ts"

export type ReplicaFactory = () => Effect.Effect<EventStoreApi & ReplicaApi, unknown, Scope.Scope>

/** A log of a few streams, sealed by a store of its own: what a replica copies. */
const sourceLog = Effect.gen(function* () {
  const source = yield* makeMemoryEventStore()
  yield* source.append("chain-A", [genesisEvent()], "no_stream")
  yield* source.append("keys", [keyIssued(1), keyIssued(2)], "any")
  yield* source.append("node-n1", [{ type: "NodeRetired", version: 1, data: { node: "n1" } }], "any")
  yield* source.append("keys", [keyIssued(3)], "any")
  return yield* logOf(source)
})

/** The runs of consecutive envelopes of one stream, as a follower hands them to its replica. */
const runs = (log: ReadonlyArray<Envelope>) => {
  const out: Envelope[][] = []
  for (const e of log) {
    const last = out[out.length - 1]
    if (last && last[0]!.stream === e.stream) last.push(e)
    else out.push([e])
  }
  return out
}

/** Re-seal an envelope with changed fields, so that its own hash holds and only what changed is wrong. */
const forged = (e: Envelope, change: Partial<Envelope>): Envelope => {
  const { hash: _, ...rest } = { ...e, ...change }
  return seal(rest)
}

/**
 * The replica capability's contract: a store takes another store's envelopes verbatim when they
 * extend its head, and refuses anything else, changing nothing.
 */
export const replicaContract = (name: string, factory: ReplicaFactory) =>
  describe(`replica contract: ${name}`, () => {
    it.scopedLive("copies another store's log verbatim, run by run: the same envelopes, streams and head", () =>
      Effect.gen(function* () {
        const log = yield* sourceLog
        const replica = yield* factory()
        for (const run of runs(log)) {
          const r = yield* replica.replicate(run[0]!.stream, run)
          expect(r.envelopes).toEqual(run)
        }
        expect(yield* logOf(replica)).toEqual(log)
        expect(yield* replica.read("keys")).toEqual(log.filter((e) => e.stream === "keys"))
        expect(yield* replica.head).toEqual({ seq: log.at(-1)!.seq, hash: log.at(-1)!.hash })
        // The replica's own appends continue the same chain.
        const next = yield* replica.append("keys", [keyIssued(9)], 2)
        expect(next.head.seq).toBe(log.length)
      })
    )

    it.scopedLive("refuses a gap, a replay, a broken back-pointer, a forged hash, a wrong stream or an unknown event, naming the seq, and keeps nothing of it", () =>
      Effect.gen(function* () {
        const log = yield* sourceLog
        const replica = yield* factory()
        const [genesis, keys] = runs(log) as [Envelope[], Envelope[]]
        yield* replica.replicate("chain-A", genesis)
        const e1 = keys[0]!
        const cases: ReadonlyArray<readonly [string, ReadonlyArray<Envelope>, string]> = [
          ["keys", [keys[1]!], "expected seq 1, found 2"],
          ["chain-A", genesis, "expected seq 1, found 0"],
          ["keys", [forged(e1, { prev: "f".repeat(64) })], "prev does not match"],
          ["keys", [{ ...e1, hash: "e".repeat(64) }], "hash mismatch"],
          ["keys", [{ ...e1, data: { ...(e1.data as object), role: "admin" } }], "hash mismatch"],
          ["node-n1", [e1], "belongs to keys"],
          ["keys", [forged(e1, { type: "NoSuchEvent" })], "unknown event type"],
          ["keys", [], "at least one envelope"]
        ]
        for (const [stream, envelopes, reason] of cases) {
          const r = yield* Effect.either(replica.replicate(stream, envelopes))
          expect(Either.isLeft(r) && r.left._tag).toBe("InvalidEvent")
          expect(Either.isLeft(r) && r.left.message).toContain(reason)
          expect(yield* logOf(replica)).toEqual(genesis)
        }
        // A run whose second envelope is bad is refused whole.
        const r = yield* Effect.either(replica.replicate("keys", [e1, { ...keys[1]!, hash: "0".repeat(64) }]))
        expect(Either.isLeft(r) && r.left.message).toContain("seq 2")
        expect(yield* replica.head).toEqual({ seq: 0, hash: genesis[0]!.hash })
      })
    )
  })
