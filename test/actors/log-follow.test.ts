import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Schedule, Scope, Exit } from "effect"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { followLog } from "../../actors/log-follower.ts"
import { serveLog } from "../../actors/log-server.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeFileReplica } from "../../adapters/eventstore/file.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { decodePage, encodeLive, encodePage, encodeReadRequest, decodeReadRequest } from "../../domain/network/log-wire.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { genesisEvent, keyIssued } from "../support/events.ts"
import { logOf } from "../support/log.ts"
import { ownNatsServer } from "../support/nats-server.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-log-follow-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const tmp = () => fs.mkdtempSync(path.join(root, `${n++}-`))

/** A source store holding genesis and `count` keys, appended 50 at a time. */
const sourceWith = (count: number) =>
  Effect.gen(function* () {
    const source = yield* makeMemoryEventStore()
    yield* source.append("chain-A", [genesisEvent()], "no_stream")
    for (let i = 0; i < count; i += 50) yield* source.append("keys", Array.from({ length: Math.min(50, count - i) }, (_, k) => keyIssued(i + k)), "any")
    return source
  })

/** Wait (bounded) until the replica's head is at `seq` (by default, the source's head). */
const reaches = (replica: EventStoreApi, target: EventStoreApi | number) =>
  Effect.repeat(
    Effect.zipWith(replica.head, typeof target === "number" ? Effect.succeed(target) : Effect.map(target.head, (h) => h?.seq), (a, seq) => a?.seq === seq),
    { until: (same) => same, schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds")) }
  )

const serving = (bus: BusApi, store: EventStoreApi) => serveLog.pipe(Effect.provideService(Bus, bus), Effect.provideService(EventStore, store))
const following = (bus: BusApi, replica: Parameters<typeof followLog>[0]) => followLog(replica, { timeoutMs: 3000 }).pipe(Effect.provideService(Bus, bus))

describe("the log over the bus: served by the store's holder, followed into replicas", () => {
  it.scopedLive("a follower catches up page by page, then takes live appends; its file replica is the log, after a reopen too", () =>
    Effect.gen(function* () {
      // Small messages: the 400 envelopes take many pages.
      const bus = yield* makeMemoryBus({ maxPayload: 8192 })
      const source = yield* sourceWith(400)
      yield* serving(bus, source)
      const dir = tmp()
      const scope = yield* Scope.make()
      const replica = yield* makeFileReplica(dir).pipe(Scope.extend(scope))
      const f = yield* following(bus, replica).pipe(Scope.extend(scope))
      expect(f.head).toEqual(yield* source.head)
      for (let k = 0; k < 3; k++) yield* source.append("keys", [keyIssued(1000 + k)], "any")
      yield* reaches(replica, source)
      expect(yield* logOf(replica)).toEqual(yield* logOf(source))
      yield* Scope.close(scope, Exit.void)
      const reopened = yield* makeFileReplica(dir)
      expect(yield* logOf(reopened)).toEqual(yield* logOf(source))
    })
  )

  /** A log server of the test's own, answering reads from `served` and publishing only what the test says. */
  const fakeServer = (bus: BusApi, served: () => ReadonlyArray<Envelope>) =>
    bus.serve(Subjects.ledgerRead, (req) =>
      Effect.sync(() => {
        const from = Either.getOrThrow(decodeReadRequest(req.data))
        return encodePage(served().slice(from, from + 7))
      })
    )

  it.scopedLive("a gap in the live messages is read rather than skipped", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const log = yield* logOf(yield* sourceWith(30))
      let upTo = 20
      yield* fakeServer(bus, () => log.slice(0, upTo))
      const replica = yield* makeMemoryEventStore()
      const f = yield* following(bus, replica)
      expect(f.head?.seq).toBe(19)
      // Seqs 20 to 24 exist, but only 24 is published live: the follower reads 20 to 23.
      upTo = 25
      yield* bus.publish(Subjects.ledgerLive, encodeLive(log[24]!))
      yield* reaches(replica, 24)
      expect(yield* logOf(replica)).toEqual(log.slice(0, 25))
      // A live envelope the replica already holds changes nothing.
      yield* bus.publish(Subjects.ledgerLive, encodeLive(log[3]!))
      expect((yield* replica.head)?.seq).toBe(24)
    })
  )

  it.scopedLive("an envelope that does not extend the replica stops the follower naming its seq; the replica keeps what checked out", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const log = yield* logOf(yield* sourceWith(30))
      const altered = log.map((e) => (e.seq === 17 ? { ...e, data: { ...(e.data as object), role: "admin" } } : e))
      yield* fakeServer(bus, () => altered)
      const replica = yield* makeMemoryEventStore()
      const failed = yield* Effect.flip(following(bus, replica))
      expect(failed).toMatchObject({ _tag: "ReplicaBroken", seq: 14 })
      expect(failed.message).toContain("seq 17")
      expect(failed.message).toContain("hash mismatch")
      expect(yield* logOf(replica)).toEqual(log.slice(0, 14))
      // The same for a live envelope: the follower stops.
      const bus2 = yield* makeMemoryBus()
      yield* fakeServer(bus2, () => log.slice(0, 10))
      const replica2 = yield* makeMemoryEventStore()
      const f = yield* following(bus2, replica2)
      yield* bus2.publish(Subjects.ledgerLive, encodeLive({ ...log[10]!, prev: log[8]!.hash }))
      const stopped = yield* Effect.flip(f.following)
      expect(stopped).toMatchObject({ _tag: "ReplicaBroken", seq: 10 })
      expect((yield* replica2.head)?.seq).toBe(9)
    })
  )

  it.scopedLive("the server refuses a malformed read in words; a follower refuses a malformed answer", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      yield* serving(bus, yield* sourceWith(5))
      const answer = yield* bus.request(Subjects.ledgerRead, new TextEncoder().encode("{\"from\":-1}"), { timeoutMs: 3000 })
      const refused = decodePage(answer, 0)
      expect(Either.isLeft(refused) && refused.left.message).toContain('the log server refused: a log read must be {"from": <seq ≥ 0>}')
      const page = Either.getOrThrow(decodePage(yield* bus.request(Subjects.ledgerRead, encodeReadRequest(4), { timeoutMs: 3000 }), 4))
      expect(page.map((e) => e.seq)).toEqual([4, 5])
      const bus2 = yield* makeMemoryBus()
      yield* bus2.serve(Subjects.ledgerRead, () => Effect.succeed(new TextEncoder().encode('{"ok":true}\n{"seq":0}')))
      const failed = yield* Effect.flip(following(bus2, yield* makeMemoryEventStore()))
      expect(failed._tag).toBe("MalformedLogMessage")
      expect(failed.message).toContain("a log message holds no envelope")
    })
  )

  it.scopedLive("over a real nats-server: a replica in another connection catches up and follows", () =>
    Effect.gen(function* () {
      const server = yield* ownNatsServer()
      const source = yield* sourceWith(120)
      yield* serving(yield* makeNatsBus([server.url]), source)
      const replica = yield* makeFileReplica(tmp())
      const f = yield* following(yield* makeNatsBus([server.url]), replica)
      expect(f.head).toEqual(yield* source.head)
      yield* source.append("node-n1", [{ type: "NodeRetired", version: 1, data: { node: "n1" } }], "any")
      yield* reaches(replica, source)
      expect(yield* logOf(replica)).toEqual(yield* logOf(source))
    })
  )
})
