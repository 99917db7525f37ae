import { Effect, Either, Fiber, Layer, Queue, Stream, type Scope } from "effect"
import { connect, ErrorCode, type Msg, type NatsConnection } from "nats"
import { Bus, BusFailure, NoResponders, RequestTimedOut, type BusApi } from "../../domain/ports/bus.ts"
import { causeText } from "../failure.ts"
import { natsConnectOptions } from "../nats-options.ts"
import { checkSend, checkSubscribe } from "./checks.ts"

const END = Symbol("end")

/** How long the connection's drain may take once every serve loop has stopped. */
const DRAIN_LIMIT = "5 seconds"

const busFailure = (what: string) => (e: unknown) => new BusFailure({ message: `${what}: ${causeText(e)}` })

/**
 * The bus on NATS (`servers`: host:port, several for a cluster), TLS from the environment (see
 * `adapters/nats-options.ts`). Its size limit is the server's `max_payload`. The client reconnects
 * forever; a request whose server stays away fails at its deadline. Closing the scope drains.
 */
export const makeNatsBus = (servers: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Effect.Effect<BusApi, BusFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const where = servers.join(",")
    const options = natsConnectOptions(servers, env)
    if (Either.isLeft(options)) return yield* new BusFailure({ message: `cannot connect to NATS at ${where}: ${options.left}` })
    const nc: NatsConnection = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => connect(options.right),
        catch: busFailure(`cannot connect to NATS at ${where}`)
      }),
      (c) => Effect.promise(() => c.close().catch(() => undefined))
    )
    // Closing the scope drains: serve loops first (see `drain`).
    yield* Effect.addFinalizer(() => api.drain)
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024
    let draining = false
    const closed = () =>
      draining || nc.isClosed() || nc.isDraining() ? Effect.fail(new BusFailure({ message: `the bus to ${where} is drained and closed` })) : Effect.void
    /** How to stop each serve loop: end its interest, then let the requests it took be answered. */
    const serving = new Set<Effect.Effect<void>>()

    // A callback subscription feeding a queue, not nats.js's async iterator: an iterator's reader
    // that is interrupted while waiting could never be released (an async generator returns only
    // at its next yield). Flushed: once returned, the server knows of it, so whatever anyone
    // publishes from then on reaches it. The queue ends once the subscription is closed or drained.
    const subscription = (subject: string, queue: string | undefined) =>
      Effect.acquireRelease(
        Effect.gen(function* () {
          const inbox = yield* Queue.unbounded<Msg | typeof END>()
          const sub = yield* Effect.try({
            try: () => nc.subscribe(subject, { ...(queue === undefined ? {} : { queue }), callback: (err, msg) => err || Queue.unsafeOffer(inbox, msg) }),
            catch: busFailure(`cannot subscribe to ${subject}`)
          })
          void sub.closed.then(() => Queue.unsafeOffer(inbox, END))
          yield* Effect.tryPromise({ try: () => nc.flush(), catch: busFailure(`cannot subscribe to ${subject}`) })
          const messages = Stream.fromQueue(inbox).pipe(Stream.takeWhile((m): m is Msg => m !== END))
          return { sub, messages }
        }),
        // The scope's reader is gone: nothing is left to deliver to (serve drains its own, see below).
        ({ sub }) => Effect.sync(() => sub.isClosed() || sub.unsubscribe())
      )

    const api: BusApi = {
      maxPayload,
      publish: (subject, data) =>
        Effect.gen(function* () {
          yield* closed()
          yield* checkSend(subject, data, maxPayload)
          yield* Effect.try({ try: () => nc.publish(subject, data), catch: busFailure(`cannot publish on ${subject}`) })
        }),
      subscribe: (subject, opts) =>
        Effect.gen(function* () {
          yield* closed()
          yield* checkSubscribe(subject)
          const { messages } = yield* subscription(subject, opts?.queue)
          return Stream.map(messages, ({ subject, data }) => ({ subject, data }))
        }),
      request: (subject, data, { timeoutMs }) =>
        Effect.gen(function* () {
          yield* closed()
          yield* checkSend(subject, data, maxPayload)
          const reply = yield* Effect.tryPromise({
            try: () => nc.request(subject, data, { timeout: timeoutMs }),
            catch: (e) => {
              const code = (e as { code?: string }).code
              if (code === ErrorCode.Timeout) return RequestTimedOut.of({ subject, timeoutMs })
              if (code === ErrorCode.NoResponders) return NoResponders.of({ subject })
              return busFailure(`request on ${subject} failed`)(e)
            }
          })
          return reply.data
        }),
      serve: (subject, handler, opts) =>
        Effect.gen(function* () {
          yield* closed()
          yield* checkSubscribe(subject)
          const { sub, messages } = yield* subscription(subject, opts?.queue)
          // One request at a time, as the memory bus does; a failed handler sends no answer.
          const loop = Stream.runForEach(messages, (m) =>
            Effect.flatMap(Effect.either(handler({ subject: m.subject, data: m.data })), (r) => (r._tag === "Right" ? Effect.sync(() => m.respond(r.right)) : Effect.void))
          )
          const fiber = yield* Effect.forkDaemon(loop)
          // The connection's drain closes it once the subscriptions are drained, not once their
          // handlers have answered: so each loop is stopped, and awaited, before the connection drains.
          const stop: Effect.Effect<void> = Effect.andThen(
            Effect.promise(() => (sub.isClosed() ? Promise.resolve() : sub.drain().catch(() => undefined))),
            Fiber.await(fiber)
          ).pipe(Effect.asVoid, Effect.ensuring(Effect.sync(() => serving.delete(stop))))
          serving.add(stop)
          yield* Effect.addFinalizer(() => stop)
        }),
      drain: Effect.gen(function* () {
        draining = true
        for (const stop of [...serving]) yield* stop
        // A subscription whose reader has stopped pulling would hold a drain forever: bounded, then closed.
        yield* Effect.promise(() => (nc.isClosed() ? Promise.resolve() : nc.drain().catch(() => undefined))).pipe(
          Effect.timeoutTo({ duration: DRAIN_LIMIT, onTimeout: () => Effect.promise(() => nc.close().catch(() => undefined)), onSuccess: () => Effect.void }),
          Effect.flatten
        )
      })
    }
    return api
  })

export const NatsBusLive = (servers: ReadonlyArray<string>) => Layer.scoped(Bus, makeNatsBus(servers))
