/**
 * The log served to followers over the bus, by the process that holds the store: each read is
 * answered with the envelopes from the seq it asks for (as many as fit one message), and every
 * envelope appended from now on is published live. Followers (nodes, validators) keep replicas
 * and never write the log.
 */
import { Effect, Either, Stream } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import type { Envelope } from "../domain/ledger/envelope.ts"
import { decodeReadRequest, encodeLive, encodePage, encodeRefusal, envelopeBytes } from "../domain/network/log-wire.ts"
import { Subjects } from "../domain/network/subjects.ts"

/** At most this many envelopes per answer, whatever their size. */
const PAGE_EVENTS = 4096
/** Room left in an answer for its status line. */
const STATUS_BYTES = 64

/** The envelopes from `from` that fit `budget` bytes on the wire; at least one if there is one. */
const pageFrom = (from: number, budget: number) =>
  Effect.flatMap(EventStore, (store) =>
    Stream.runFoldWhile(
      Stream.take(store.readAll(from), PAGE_EVENTS),
      { envelopes: [] as Envelope[], bytes: 0, full: false },
      (page) => !page.full,
      (page, e) => {
        const bytes = page.bytes + envelopeBytes(e)
        if (page.envelopes.length > 0 && bytes > budget) return { ...page, full: true }
        page.envelopes.push(e)
        return { ...page, bytes }
      }
    )
  )

/** Serve the log over the bus until the scope closes. */
export const serveLog = Effect.gen(function* () {
  const bus = yield* Bus
  const store = yield* EventStore
  const budget = bus.maxPayload - STATUS_BYTES
  yield* bus.serve(Subjects.ledgerRead, (request) =>
    Either.match(decodeReadRequest(request.data), {
      onLeft: (e) => Effect.succeed(encodeRefusal(e.message)),
      onRight: (from) =>
        pageFrom(from, budget).pipe(
          Effect.map((page) => encodePage(page.envelopes)),
          Effect.catchTag("StoreFailure", (e) => Effect.succeed(encodeRefusal(e.message)))
        )
    }).pipe(Effect.provideService(EventStore, store))
  )
  const head = yield* store.head
  // Live from the next seq; a follower that misses a message finds the gap and reads it.
  yield* store.subscribe((head?.seq ?? -1) + 1).pipe(
    Stream.runForEach((e) =>
      bus.publish(Subjects.ledgerLive, encodeLive(e)).pipe(
        Effect.catchTag("MessageTooLarge", (tooLarge) => Effect.logWarning(`seq ${e.seq} is not published live: ${tooLarge.message}`))
      )
    ),
    Effect.tapErrorCause((cause) => Effect.logError("the log is no longer published live", cause)),
    Effect.forkScoped
  )
})
