import type { PubAck } from "nats"
import { Effect, Either } from "effect"
import { sealBatch } from "../../domain/ledger/envelope.ts"
import { StoreFailure, WrongExpectedRevision, type InvalidEvent } from "../../domain/ledger/errors.ts"
import { describeExpected, revisionMatches } from "../../domain/ports/event-store.ts"
import { causeText } from "../failure.ts"
import { appendHeaders, encodeAppendMessage } from "./jetstream-format.ts"
import { isTransient } from "./jetstream-log.ts"
import { advance, catchUp, resolve, type Flight, type LogCorrupt, type Request, type Staged, type View, type Writer } from "./jetstream-writer-state.ts"

/** How the writer stages and publishes a batch of appends, and settles it once the server has answered. */

const HEADER_ROOM = 1024

/** Seal each request after the view's head and the requests staged before it, checking its expected revision. */
const stage = (w: Writer, batch: ReadonlyArray<Request>, view: View) =>
  Effect.gen(function* () {
    const staged: Staged[] = []
    const suspect: Array<Flight["suspect"][number]> = []
    const deferred: Request[] = []
    const pending = new Map(view.revisions)
    let head = view.head
    const maxPayload = w.log.conn.nc.info?.max_payload ?? 1 << 20
    for (const req of batch) {
      // Settled while the log was read: a copy from an earlier attempt landed.
      if (req.settled) continue
      const actual = pending.get(req.stream) ?? w.revisions.get(req.stream)!
      const refuse = (error: WrongExpectedRevision | InvalidEvent, dependsOnFlight: boolean) =>
        dependsOnFlight ? deferred.push(req) : suspect.push({ req, error })
      if (!revisionMatches(req.expected, actual)) {
        refuse(WrongExpectedRevision.of({ stream: req.stream, expected: describeExpected(req.expected), actual }), pending.has(req.stream))
        continue
      }
      // Sealing refuses only by position (the genesis rules), which appends in flight move.
      const sealed = sealBatch(head, req.stream, req.events, req.at)
      if (Either.isLeft(sealed)) {
        refuse(sealed.left, staged.length > 0 || view.lastId !== undefined)
        continue
      }
      const msg = encodeAppendMessage(w.log.name, sealed.right, actual + sealed.right.length)
      if (msg.data.length + HEADER_ROOM > maxPayload) {
        const reason = `an append of ${msg.data.length} bytes to ${req.stream} exceeds the NATS server's max_payload of ${maxPayload} bytes`
        yield* resolve(w, req, Either.left(new StoreFailure({ reason })))
        continue
      }
      staged.push({ req, msg, envelopes: sealed.right })
      pending.set(req.stream, msg.meta.revision)
      head = msg.meta.last
    }
    return { staged, suspect, deferred }
  })

/**
 * Publish the staged appends after the view, in order, without waiting: the first expects the
 * view's sequence (and the last id in flight, if any), each next one the one before it.
 */
const publish = (w: Writer, staged: ReadonlyArray<Staged>, view: View): Flight["outcomes"] => {
  if (staged.length === 0) return Promise.resolve([])
  // Every publish is issued before the first await, so they leave in this order.
  return Promise.allSettled(
    staged.map(({ msg, req }, i) => {
      req.copies.push(msg.id)
      w.sent.set(msg.id, req)
      const lastMsgID = i === 0 ? view.lastId : staged[i - 1]!.msg.id
      return w.log.conn.js.publish(msg.subject, msg.data, {
        msgID: msg.id,
        headers: appendHeaders(msg.meta),
        timeout: w.settings.ackTimeoutMs,
        expect: lastMsgID === undefined ? { lastSequence: view.seq } : { lastSequence: view.seq + i, lastMsgID }
      })
    })
  )
}

/** Stage `batch` after everything in flight and publish it as a new flight. */
export const launch = (w: Writer, batch: ReadonlyArray<Request>, view: View) =>
  Effect.gen(function* () {
    const { staged, suspect, deferred } = yield* stage(w, batch, view)
    w.flights.push({ staged, suspect, deferred, outcomes: publish(w, staged, view) })
  })

/** How a publish that did not land at the expected place failed. */
type Miss = "moved" | "unavailable" | "refused"
const classify = (outcome: PromiseSettledResult<PubAck>): Miss => {
  if (outcome.status === "fulfilled") return "unavailable"
  const code = (outcome.reason as { api_error?: { err_code?: number } }).api_error?.err_code
  // Wrong last sequence / wrong last message id: the log moved, or the append before it did not land.
  if (code === 10071 || code === 10070) return "moved"
  return isTransient(outcome.reason) ? "unavailable" : "refused"
}

type Settled = { readonly retry: Request[]; readonly unavailable: boolean }

/** Whether every append of the oldest flight landed where it was meant to, with no refusal to check. */
export const landedCleanly = (w: Writer, f: Flight, outcomes: ReadonlyArray<PromiseSettledResult<PubAck>>) =>
  f.suspect.length === 0 && outcomes.every((o, i) => o.status === "fulfilled" && o.value.seq === w.tip.seq + 1 + i)

/**
 * Settle flights, oldest first, all answered: the appends that landed in order are done; from the
 * first that did not, the log is read (finding our own appends whose acknowledgement was lost,
 * and other writers'), and what did not land is retried, sealed against the true head.
 */
export const settle = (w: Writer, flights: ReadonlyArray<Flight>): Effect.Effect<Settled, LogCorrupt> =>
  Effect.gen(function* () {
    const unresolved: Request[] = []
    const suspect: Array<Flight["suspect"][number]> = []
    const deferred: Request[] = []
    let miss: Miss | undefined
    for (const f of flights) {
      const outcomes = yield* Effect.promise(() => f.outcomes)
      for (let i = 0; i < f.staged.length; i++) {
        const { req, msg, envelopes } = f.staged[i]!
        const o = outcomes[i]!
        if (miss === undefined && o.status === "fulfilled" && o.value.seq === w.tip.seq + 1) {
          yield* advance(w, o.value.seq, { meta: msg.meta, envelopes })
          continue
        }
        if (miss === undefined) {
          miss = classify(o)
          // The server refused this append for a reason of its own (not a race): it did not land.
          if (miss === "refused") {
            yield* resolve(w, req, Either.left(new StoreFailure({ reason: `JetStream refused the append: ${causeText((o as PromiseRejectedResult).reason)}` })))
            continue
          }
        }
        unresolved.push(req)
      }
      suspect.push(...f.suspect)
      deferred.push(...f.deferred)
    }
    if (unresolved.length === 0 && suspect.length === 0) return { retry: deferred, unavailable: false }

    const read = yield* Effect.either(catchUp(w))
    if (Either.isLeft(read)) {
      const retry = [...unresolved, ...suspect.map((s) => s.req), ...deferred].filter((r) => !r.settled)
      if (read.left._tag === "LogCorrupt") {
        // Left waiting for the writer to fail them as it stops.
        w.retry.push(...retry)
        return yield* read.left
      }
      for (const r of retry) r.problem = read.left.reason
      return { retry, unavailable: true }
    }
    const retry = unresolved.filter((r) => !r.settled)
    for (const r of retry) {
      if (miss === "moved") r.rounds++
      r.problem = miss === "moved" ? "other writers kept moving the log" : "JetStream did not confirm the append"
    }
    // Nothing new landed: the writer's view was current, so the refusals stand.
    if (read.right === 0) for (const s of suspect) yield* resolve(w, s.req, Either.left(s.error))
    else retry.push(...suspect.map((s) => s.req))
    return { retry: [...retry, ...deferred], unavailable: miss === "unavailable" }
  })
