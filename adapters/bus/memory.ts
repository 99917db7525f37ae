import { Deferred, Effect, Fiber, Layer, Queue, Stream, type Scope } from "effect"
import { subjectMatches } from "../../domain/network/subjects.ts"
import { Bus, BusFailure, NoResponders, RequestTimedOut, type BusApi, type BusMessage } from "../../domain/ports/bus.ts"
import { checkSend, checkSubscribe, DEFAULT_MAX_PAYLOAD } from "./checks.ts"

/** Ends a subscription's queue: whatever was queued before it is still delivered. */
const END = Symbol("end")
type Delivery = { readonly msg: BusMessage; readonly reply: Deferred.Deferred<Uint8Array> | undefined }
type Sub = { readonly pattern: string; readonly queue: string | undefined; readonly inbox: Queue.Queue<Delivery | typeof END> }

/**
 * The bus inside one process, for tests and for `blyan up` without NATS: the same semantics as
 * the NATS adapter (subject patterns, queue groups, no-responders, size limit, drain). Bytes are
 * copied on the way in and out, as a network would, so no sender or receiver sees another's buffer.
 */
export const makeMemoryBus = (options: { readonly maxPayload?: number } = {}): Effect.Effect<BusApi, never, Scope.Scope> =>
  Effect.gen(function* () {
    const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD
    const subs = new Set<Sub>()
    /** Round-robin position of each queue group. */
    const turns = new Map<string, number>()
    /** The serve loops, awaited by drain. */
    const serving = new Set<Fiber.Fiber<void>>()
    let closed: BusFailure | undefined

    const open = Effect.suspend(() => (closed ? Effect.fail(closed) : Effect.void))

    /** The subscriptions a message on `subject` goes to: every plain one, and one member of each queue group. */
    const receivers = (subject: string): Sub[] => {
      const out: Sub[] = []
      const groups = new Map<string, Sub[]>()
      for (const s of subs) {
        if (!subjectMatches(s.pattern, subject)) continue
        if (s.queue === undefined) out.push(s)
        else {
          const members = groups.get(s.queue)
          if (members) members.push(s)
          else groups.set(s.queue, [s])
        }
      }
      for (const [queue, members] of groups) {
        const turn = turns.get(queue) ?? 0
        turns.set(queue, turn + 1)
        out.push(members[turn % members.length]!)
      }
      return out
    }

    const deliver = (subject: string, data: Uint8Array, reply: Deferred.Deferred<Uint8Array> | undefined) =>
      Effect.gen(function* () {
        const to = receivers(subject)
        for (const s of to) yield* Queue.offer(s.inbox, { msg: { subject, data: data.slice() }, reply })
        return to.length
      })

    const register = (pattern: string, queue: string | undefined) =>
      Effect.acquireRelease(
        Effect.map(Queue.unbounded<Delivery | typeof END>(), (inbox) => {
          const sub: Sub = { pattern, queue, inbox }
          subs.add(sub)
          return sub
        }),
        (sub) => end(sub)
      )
    const end = (sub: Sub) =>
      Effect.suspend(() => {
        subs.delete(sub)
        return Queue.offer(sub.inbox, END)
      })
    const deliveries = (sub: Sub) => Stream.fromQueue(sub.inbox).pipe(Stream.takeWhile((d): d is Delivery => d !== END))

    const api: BusApi = {
      maxPayload,
      publish: (subject, data) =>
        Effect.gen(function* () {
          yield* open
          yield* checkSend(subject, data, maxPayload)
          yield* deliver(subject, data, undefined)
        }),
      subscribe: (subject, opts) =>
        Effect.gen(function* () {
          yield* open
          yield* checkSubscribe(subject)
          const sub = yield* register(subject, opts?.queue)
          return Stream.map(deliveries(sub), (d) => d.msg)
        }),
      request: (subject, data, { timeoutMs }) =>
        Effect.gen(function* () {
          yield* open
          yield* checkSend(subject, data, maxPayload)
          const reply = yield* Deferred.make<Uint8Array>()
          if ((yield* deliver(subject, data, reply)) === 0) return yield* NoResponders.of({ subject })
          const answer = yield* Deferred.await(reply).pipe(
            Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => RequestTimedOut.of({ subject, timeoutMs }) })
          )
          return answer.slice()
        }),
      serve: (subject, handler, opts) =>
        Effect.gen(function* () {
          yield* open
          yield* checkSubscribe(subject)
          const sub = yield* register(subject, opts?.queue)
          // One request at a time, each answered (or not, if the handler fails) before the next.
          const loop = Stream.runForEach(deliveries(sub), ({ msg, reply }) =>
            Effect.flatMap(Effect.either(handler(msg)), (r) => (reply && r._tag === "Right" ? Deferred.succeed(reply, r.right) : Effect.void))
          )
          const fiber = yield* Effect.forkDaemon(loop)
          serving.add(fiber)
          // Stop taking requests, then let the ones taken be answered.
          yield* Effect.addFinalizer(() => Effect.andThen(end(sub), Fiber.await(fiber)).pipe(Effect.ensuring(Effect.sync(() => serving.delete(fiber)))))
        }),
      drain: Effect.gen(function* () {
        if (closed) return
        closed = new BusFailure({ message: "the bus is drained and closed" })
        for (const s of [...subs]) yield* end(s)
        for (const f of [...serving]) yield* Fiber.await(f)
      })
    }
    yield* Effect.addFinalizer(() => api.drain)
    return api
  })

export const MemoryBusLive = (options: { readonly maxPayload?: number } = {}) => Layer.scoped(Bus, makeMemoryBus(options))
