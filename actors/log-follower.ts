/**
 * A follower's replica of the log served over the bus (see `log-server.ts`): it catches up by
 * reading pages from its head, then takes the live envelopes, reading again whenever it finds a
 * gap. Every envelope is checked by the replica as the next link (seq, back-pointer, own hash,
 * an event the catalog knows in its stream) before it is kept; the first that is not stops the
 * follower with `ReplicaBroken`, naming the seq, and the replica keeps only what checked out.
 */
import { Effect, Fiber, Schema, Stream } from "effect"
import { Bus, type RequestError } from "../domain/ports/bus.ts"
import type { EventStoreApi, ReplicaApi } from "../domain/ports/event-store.ts"
import type { Envelope, Head } from "../domain/ledger/envelope.ts"
import type { StoreFailure } from "../domain/ledger/errors.ts"
import { decodeLive, decodePage, encodeReadRequest, type MalformedLogMessage } from "../domain/network/log-wire.ts"
import { Subjects } from "../domain/network/subjects.ts"

/** What the log server sent does not extend the replica: the follower stops rather than use it. */
export class ReplicaBroken extends Schema.TaggedError<ReplicaBroken>()("ReplicaBroken", { seq: Schema.Number, message: Schema.String }) {}

export type FollowError = ReplicaBroken | MalformedLogMessage | RequestError | StoreFailure

export type Replica = EventStoreApi & ReplicaApi

/** Keep `envelopes` (consecutive, from the replica's next seq), run by run of one stream. */
const keep = (replica: Replica, envelopes: ReadonlyArray<Envelope>) =>
  Effect.gen(function* () {
    for (let i = 0; i < envelopes.length; ) {
      let j = i + 1
      while (j < envelopes.length && envelopes[j]!.stream === envelopes[i]!.stream) j++
      const run = envelopes.slice(i, j)
      yield* replica.replicate(run[0]!.stream, run).pipe(
        Effect.catchTag("InvalidEvent", (e) => new ReplicaBroken({ seq: run[0]!.seq, message: `the log served from seq ${run[0]!.seq} is refused by the replica: ${e.message}` }))
      )
      i = j
    }
  })

const nextSeq = (head: Head | undefined) => (head?.seq ?? -1) + 1

/** Read pages from the replica's head until the server has nothing more. */
const catchUp = (replica: Replica, timeoutMs: number) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    for (;;) {
      const from = nextSeq(yield* replica.head)
      const answer = yield* bus.request(Subjects.ledgerRead, encodeReadRequest(from), { timeoutMs })
      const page = yield* decodePage(answer, from)
      if (page.length === 0) return
      yield* keep(replica, page)
    }
  })

/**
 * Follow the log into `replica`: returns once it has caught up with the server, with the head it
 * reached, and `following`, which fails with whatever stops the follower and ends when the bus
 * does (the follower runs until the scope closes otherwise).
 */
export const followLog = (replica: Replica, options: { readonly timeoutMs: number }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    // Subscribed before catching up: nothing published meanwhile is missed.
    const live = yield* bus.subscribe(Subjects.ledgerLive)
    yield* catchUp(replica, options.timeoutMs)
    const onLive = (data: Uint8Array) =>
      Effect.gen(function* () {
        const e = yield* decodeLive(data)
        const next = nextSeq(yield* replica.head)
        if (e.seq < next) return
        if (e.seq === next) return yield* keep(replica, [e])
        yield* catchUp(replica, options.timeoutMs)
      })
    const fiber = yield* Effect.forkScoped(Stream.runForEach(live, (m) => onLive(m.data)))
    const following: Effect.Effect<void, FollowError> = Fiber.join(fiber)
    return { head: yield* replica.head, following }
  })
