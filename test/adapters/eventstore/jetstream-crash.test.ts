import { Effect, Either, Fiber, Schedule, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { connectJetStream } from "../../../adapters/eventstore/jetstream-connection.ts"
import { makeJetStreamEventStore } from "../../../adapters/eventstore/jetstream.ts"
import { verifyChain, type Envelope } from "../../../domain/ledger/envelope.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { logOf } from "../../support/log.ts"
import { ownNatsServer } from "../../support/nats-server.ts"

/** Poll `done` until it holds; fail after `seconds`. */
const waitUntil = (what: string, done: () => boolean, seconds = 60) =>
  Effect.suspend(() => (done() ? Effect.void : Effect.fail(what))).pipe(
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: seconds * 20 }),
    Effect.orDieWith((what) => new Error(`timed out waiting until ${what}`))
  )

describe("jetstream event store: the server killed mid-run", () => {
  // Live: a real server, killed and restarted, and a writer that waits for it on the clock.
  it.scopedLive("kill -9 of nats-server while appending: the writer reconnects, no acknowledged event is lost or doubled, and a subscriber follows on", () =>
    Effect.gen(function* () {
      const server = yield* ownNatsServer()
      const conn = yield* connectJetStream([server.url])
      const store = yield* makeJetStreamEventStore(conn, { stream: "LEDGER", replicas: 1, writer: { ackTimeoutMs: 2_000 } })
      yield* store.append("chain-A", [genesisEvent()], "no_stream")

      const acked: Envelope[] = []
      const failed: unknown[] = []
      let next = 0
      const appender = Effect.forever(
        Effect.suspend(() => Effect.either(store.append("keys", [keyIssued(next++)], "any"))).pipe(
          Effect.map((r) => (Either.isRight(r) ? acked.push(...r.right.envelopes) : failed.push(r.left)))
        )
      )
      const writers = yield* Effect.fork(Effect.all(Array.from({ length: 8 }, () => appender), { concurrency: "unbounded" }))
      const followed: Envelope[] = []
      const follower = yield* Effect.fork(Stream.runForEach(store.subscribe(0), (e) => Effect.sync(() => followed.push(e))))

      yield* waitUntil("200 appends are acknowledged", () => acked.length >= 200)
      yield* server.kill9
      const atKill = acked.length
      yield* Effect.sleep("500 millis")
      yield* server.restart
      yield* waitUntil("200 more appends are acknowledged after the restart", () => acked.length >= atKill + 200)
      yield* Fiber.interrupt(writers)

      expect(failed).toEqual([])
      const log = yield* logOf(store)
      yield* waitUntil("the subscriber has caught up with the log", () => followed.length >= log.length)
      yield* Fiber.interrupt(follower)
      expect(followed.slice(0, log.length)).toEqual(log)
      expect(Either.isRight(verifyChain(log))).toBe(true)
      for (const e of acked) expect(log[e.seq]).toEqual(e)
      // Each append carried a distinct key: one that landed twice would show as a repeated key.
      const keys = log.slice(1).map((e) => (e.data as { keyHash: string }).keyHash)
      expect(new Set(keys).size).toBe(keys.length)
    })
  )
})
