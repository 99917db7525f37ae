import { Clock, Deferred, Duration, Effect, Either, Fiber, Queue, type Scope } from "effect"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import type { AppendResult, EventStoreApi } from "../../domain/ports/event-store.ts"
import { nowIso } from "./log-index.ts"
import { prepareAppend } from "./seal-append.ts"
import type { JetStreamLog } from "./jetstream-log.ts"
import { landedCleanly, launch, settle } from "./jetstream-flight.ts"
import { learnRevisions, openTip, resolve, RevisionCache, viewOf, type AppendError, type LogCorrupt, type Request, type Writer, type WriterSettings } from "./jetstream-writer-state.ts"

/**
 * The writer: any number of them, in any number of processes on any number of machines, extend
 * one hash chain. Each append is sealed against the head this writer knows and published with
 * the JetStream sequence of that head as the expected last sequence; the server refuses it if
 * anything landed in between. The loser reads what landed (verifying every link), checks its
 * caller's expected revision again, re-seals and retries, up to `maxRounds` times.
 *
 * Appends waiting together are published as one flight, and up to MAX_FLIGHTS flights are in the
 * air at once: the first append of a flight expects the sequence of the head (and the message id
 * of the last append in flight), each next one also the message id of the one before it, so none
 * can land unless all before it did, in order. When one does not, every later one fails too; the
 * writer waits for all of them, reads the log, and starts again from the true head.
 *
 * A publish whose outcome is unknown (timeout, lost connection) cannot fork the chain: its
 * expected last sequence pins where it may land. The writer reads the log and finds it there or
 * not; a copy still in flight that lands later has the same content and id as a retry sealed at
 * the same head (the timestamp is taken once per append), so the server drops the second as a
 * duplicate. An append is never reported failed while it may still land, except when the server
 * stays unreachable past `unavailableMs`: then the failure says so.
 *
 * Per-stream revisions come from the headers of the last message on the stream's subject, kept
 * in a bounded cache valid as of the writer's tip; nothing of the log is held in memory.
 */
export const defaultWriterSettings: WriterSettings = { unavailableMs: 60_000, maxRounds: 1_000, ackTimeoutMs: 5_000 }

const MAX_BATCH = 1024
const MAX_FLIGHTS = 4
const BACKOFF_MIN = 50
const BACKOFF_MAX = 1_000

/** Requests that have waited or raced too long fail here, saying why; the rest go on. */
const expire = (w: Writer, reqs: ReadonlyArray<Request>, now: number) =>
  Effect.filter(reqs, (r) => {
    const late = now - r.since > w.settings.unavailableMs
    if (!late && r.rounds < w.settings.maxRounds) return Effect.succeed(true)
    const reason = late
      ? `JetStream did not confirm the append within ${w.settings.unavailableMs} ms (${r.problem ?? "no answer"}); it may still land: read the log before retrying`
      : `the append lost the race to other writers ${r.rounds} times`
    return Effect.as(resolve(w, r, Either.left(new StoreFailure({ reason }))), false)
  })

/** Fail everything waiting with `failure`, and refuse every later append. */
const stop = (w: Writer, failure: StoreFailure) =>
  Effect.gen(function* () {
    w.stopped ??= failure
    const left = [...w.retry, ...w.flights.flatMap((f) => [...f.staged.map((s) => s.req), ...f.suspect.map((s) => s.req), ...f.deferred]), ...(yield* Queue.takeAll(w.queue))]
    w.retry = []
    w.flights = []
    for (const r of left) if (!r.settled) yield* resolve(w, r, Either.left(w.stopped))
  })

/**
 * Settle the oldest flight, or every flight if anything in the oldest went wrong (later ones
 * cannot have landed cleanly); what is to be retried waits in `retry`. Whether the server failed to answer.
 */
const settleOldest = (w: Writer): Effect.Effect<boolean, LogCorrupt> =>
  Effect.gen(function* () {
    const oldest = w.flights[0]!
    const outcomes = yield* Effect.promise(() => oldest.outcomes)
    const flights = landedCleanly(w, oldest, outcomes) ? w.flights.splice(0, 1) : w.flights.splice(0)
    const settled = yield* settle(w, flights)
    w.retry.push(...settled.retry)
    return settled.unavailable
  })

/** Publish the requests to retry and `fresh` ones as a flight; false when the log must be settled first. */
const launchWaiting = (w: Writer, fresh: Iterable<Request>) =>
  Effect.gen(function* () {
    const batch = yield* expire(w, [...w.retry, ...fresh], yield* Clock.currentTimeMillis)
    w.retry = []
    if (batch.length === 0) return true
    const learned = yield* Effect.either(learnRevisions(w, new Set(batch.map((r) => r.stream)), viewOf(w)))
    if (Either.isLeft(learned) || learned.right === "behind") {
      w.retry = batch
      if (Either.isLeft(learned)) {
        if (learned.left._tag === "LogCorrupt") return yield* learned.left
        for (const r of batch) r.problem = learned.left.reason
      }
      return false
    }
    // Seen after learning: reading other writers' appends may have moved the tip.
    yield* launch(w, batch, viewOf(w))
    return true
  })

const runWriter = (w: Writer) => {
  let backoff = BACKOFF_MIN
  const pause = (unavailable: boolean) =>
    Effect.gen(function* () {
      if (!unavailable) return void (backoff = BACKOFF_MIN)
      yield* Effect.sleep(Duration.millis(backoff))
      backoff = Math.min(BACKOFF_MAX, backoff * 2)
    })
  const step = Effect.gen(function* () {
    const waiting = w.retry.length > 0 || (yield* Queue.size(w.queue)) > 0
    if (w.flights.length === 0 || (waiting && w.flights.length < MAX_FLIGHTS)) {
      // Waiting for work stays interruptible, so that closing the store never waits for an append;
      // what was taken is launched whatever happens.
      const idle = w.flights.length === 0 && w.retry.length === 0
      const take = idle ? Queue.takeBetween(w.queue, 1, MAX_BATCH) : Queue.takeUpTo(w.queue, MAX_BATCH)
      const launched = yield* Effect.uninterruptibleMask((restore) => Effect.flatMap(restore(take), (fresh) => launchWaiting(w, fresh)))
      if (launched) return
      // Behind other writers, or the server did not answer: settle what is in flight, then retry.
      if (w.flights.length === 0) return yield* pause(true)
    }
    yield* pause(yield* Effect.uninterruptible(settleOldest(w)))
  }).pipe(Effect.catchTag("LogCorrupt", (e) => stop(w, e.failure)))
  return Effect.forever(Effect.suspend(() => (w.stopped ? Effect.never : step)))
}

/**
 * Start the writer for the scope: find (and verify) the head, fork the loop, and return `append`. Closing the
 * scope stops the loop, waits for the flights in the air to be answered, and fails whatever is
 * still waiting.
 */
export const startWriter = (log: JetStreamLog, settings: WriterSettings): Effect.Effect<EventStoreApi["append"], StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const tip = yield* openTip(log)
    const w: Writer = {
      log,
      settings,
      queue: yield* Queue.unbounded<Request>(),
      revisions: new RevisionCache(),
      sent: new Map(),
      tip,
      flights: [],
      retry: [],
      stopped: undefined
    }
    const closed = new StoreFailure({ reason: `the JetStream event store on ${log.conn.servers} is closed` })
    // Forked inside acquire (uninterruptible), so interruptibility is restored explicitly.
    yield* Effect.acquireRelease(Effect.forkDaemon(Effect.interruptible(runWriter(w))), (fiber) =>
      Effect.gen(function* () {
        yield* Fiber.interrupt(fiber)
        if (w.flights.length > 0) yield* Effect.ignore(settle(w, w.flights.splice(0)))
        yield* stop(w, closed)
      })
    )
    const append: EventStoreApi["append"] = (stream, events, expected) =>
      Effect.gen(function* () {
        if (w.stopped) return yield* w.stopped
        const prepared = yield* prepareAppend(stream, events)
        const done = yield* Deferred.make<AppendResult, AppendError>()
        const at = yield* nowIso
        const since = yield* Clock.currentTimeMillis
        yield* Queue.offer(w.queue, { stream, events: prepared, expected, at, since, done, copies: [], rounds: 0, problem: undefined, settled: false })
        return yield* Deferred.await(done)
      })
    return append
  })
