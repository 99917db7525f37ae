import { Effect, Either } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { makeJetStreamEventStore } from "../../../adapters/eventstore/jetstream.ts"
import { appendHeaders, subjectOf } from "../../../adapters/eventstore/jetstream-format.ts"
import { verifyChain, type Envelope } from "../../../domain/ledger/envelope.ts"
import { newEvent } from "../../../domain/ledger/events.ts"
import { revisionMatches, type AppendResult, type ExpectedRevision } from "../../../domain/ports/event-store.ts"
import { eventStoreContract } from "../../contract/event-store.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { deleteStreamAfter, testConnection, uniqueName } from "../../support/jetstream-fixtures.ts"
import { logOf } from "../../support/log.ts"
import { scopedPropertyRunner } from "../../support/property.ts"

/** A fresh JetStream stream on the server at BLYAN_TEST_NATS_URL, deleted after; `open` opens a store on it (each on its own connection). */
const freshLog = Effect.gen(function* () {
  const stream = uniqueName("T_LEDGER")
  const conn = yield* testConnection()
  yield* deleteStreamAfter(conn, stream)
  const open = Effect.flatMap(testConnection(), (c) => makeJetStreamEventStore(c, { stream, replicas: 1 }))
  return { conn, stream, open }
})

eventStoreContract("jetstream", () => Effect.flatMap(freshLog, (l) => l.open))

describe("jetstream event store: layout", () => {
  // Live, as the contract: real IO.
  it.scopedLive("streams whose names hold dots keep subjects of their own", () =>
    Effect.gen(function* () {
      const store = yield* Effect.flatMap(freshLog, (l) => l.open)
      yield* store.append("chain-A", [genesisEvent()], "no_stream")
      // Subjects with empty tokens would be invalid, and `a.b` must not read as `a`, then `b`.
      const names = ["node-a.b", "node-a..b", "node-a.b.", "node-a-b", "node-a"]
      for (const name of names) {
        const r = yield* store.append(name, [newEvent("NodeRetired", { node: name }), newEvent("NodeRetired", { node: name })], "no_stream")
        expect(r.revision).toBe(1)
      }
      for (const name of names) expect((yield* store.read(name)).map((e) => [e.stream, (e.data as { node: string }).node])).toEqual([[name, name], [name, name]])
      expect(subjectOf("LOG", "expert-0.3")).toBe("LOG.expert-0~3")
    })
  )
})

describe("jetstream event store: a writer behind the log", () => {
  it.scopedLive("a writer opened on an empty log appends after what others wrote since, to a stream they wrote", () =>
    Effect.gen(function* () {
      const { open } = yield* freshLog
      const late = yield* open
      const early = yield* open
      yield* early.append("chain-A", [genesisEvent()], "no_stream")
      yield* early.append("node-y", [newEvent("NodeRetired", { node: "a" })], "no_stream")
      // Learning node-y's revision reads the log up to it; the append is sealed after that, not after what the writer saw at open.
      const r = yield* late.append("node-y", [newEvent("NodeRetired", { node: "b" })], 0)
      expect([r.revision, r.head.seq]).toEqual([1, 2])
      expect(Either.isRight(verifyChain(yield* logOf(early)))).toBe(true)
    })
  )
})

describe("jetstream event store: a log altered by someone else", () => {
  it.scopedLive("a forged append is reported by reads naming its seq, refused by the writer that meets it, and by a writer that opens on it", () =>
    Effect.gen(function* () {
      const { conn, stream, open } = yield* freshLog
      const store = yield* open
      yield* store.append("chain-A", [genesisEvent()], "no_stream")
      const a = yield* store.append("keys", [keyIssued(1)], "no_stream")
      // A writer that does not keep the protocol: the next link, whose envelope does not hash to what it says.
      const real = (yield* Effect.flatMap(open, (s) => s.append("keys", [keyIssued(2)], 0))).envelopes[0]!
      const forged: Envelope = { ...real, seq: real.seq + 1, prev: real.hash, data: (keyIssued(3) as { data: unknown }).data }
      const meta = { first: forged.seq, prev: forged.prev, last: { seq: forged.seq, hash: forged.hash }, revision: 2 }
      yield* Effect.promise(() =>
        conn.js.publish(subjectOf(stream, "keys"), new TextEncoder().encode(JSON.stringify(forged)), { headers: appendHeaders(meta) })
      )
      const read = yield* Effect.flip(logOf(store))
      expect(read).toMatchObject({ _tag: "StoreFailure", seq: forged.seq })
      expect(read.message).toContain("corrupted event log")
      expect(yield* Effect.flip(store.read("keys"))).toMatchObject({ _tag: "StoreFailure", seq: forged.seq })
      // This writer's head is `a`: its append loses the race, it reads the forged link and stops.
      expect(a.head.seq).toBe(1)
      for (let i = 0; i < 2; i++) expect(yield* Effect.flip(store.append("keys", [keyIssued(4)], "any"))).toMatchObject({ _tag: "StoreFailure", seq: forged.seq })
      expect(yield* Effect.flip(open)).toMatchObject({ _tag: "StoreFailure", seq: forged.seq })
    })
  )
})

const STREAMS = ["node-x", "node-y", "keys"] as const
const expectedArb = fc.oneof(
  fc.constant<ExpectedRevision>("any"),
  fc.constant<ExpectedRevision>("no_stream"),
  fc.constant<ExpectedRevision>("stream_exists"),
  fc.integer({ min: -1, max: 3 })
)
const commandArb = fc.record({ writer: fc.integer({ min: 0, max: 1 }), stream: fc.constantFrom(...STREAMS), expected: expectedArb, events: fc.integer({ min: 1, max: 2 }) })

const eventsFor = (stream: string, n: number, tag: number) =>
  Array.from({ length: n }, (_, i) => (stream === "keys" ? keyIssued(tag * 10 + i) : newEvent("NodeRetired", { node: `n${tag}-${i}` })))

describe("jetstream event store: two writers on one log", () => {
  it.live("any interleaving of two writers' appends is one chain, where each accepted append met its expected revision exactly where it landed (property)", () =>
    Effect.gen(function* () {
      const run = yield* scopedPropertyRunner
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 12 }), (commands) =>
            run(
              Effect.gen(function* () {
                const { open } = yield* freshLog
                const writers = [yield* open, yield* open]
                yield* writers[0]!.append("chain-A", [genesisEvent()], "no_stream")
                const results = yield* Effect.forEach(
                  commands,
                  (c, i) => Effect.either(writers[c.writer]!.append(c.stream, eventsFor(c.stream, c.events, i), c.expected)),
                  { concurrency: "unbounded" }
                )
                const log = yield* logOf(writers[1]!)
                expect(Either.isRight(verifyChain(log))).toBe(true)
                const accepted: AppendResult[] = []
                results.forEach((r, i) => {
                  if (Either.isLeft(r)) expect(r.left._tag).toBe("WrongExpectedRevision")
                  else {
                    accepted.push(r.right)
                    for (const e of r.right.envelopes) expect(log[e.seq]).toEqual(e)
                    // Its stream's revision just before it landed satisfied what the caller expected.
                    const before = log.filter((e) => e.stream === commands[i]!.stream && e.seq < r.right.envelopes[0]!.seq).length - 1
                    expect(revisionMatches(commands[i]!.expected, before)).toBe(true)
                    expect(r.right.revision).toBe(before + commands[i]!.events)
                  }
                })
                // Nothing but the accepted appends landed, and each stream reads as its part of the log.
                expect(log.length).toBe(1 + accepted.reduce((n, r) => n + r.envelopes.length, 0))
                for (const s of STREAMS) expect(yield* writers[0]!.read(s)).toEqual(log.filter((e) => e.stream === s))
              })
            )
          ),
          { numRuns: 15 }
        )
      )
    })
  )
})
