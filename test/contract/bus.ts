import * as crypto from "node:crypto"
import { Chunk, Deferred, Effect, Either, Fiber, Stream, type Scope } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import type { BusApi, BusMessage } from "../../domain/ports/bus.ts"

/** Clients of one network: each `client` is a connection of its own where the adapter has connections. */
export type BusNetwork = { readonly client: Effect.Effect<BusApi, unknown, Scope.Scope> }

/** A subject prefix of the test's own, so tests sharing a server never hear each other. */
const fresh = () => `blyan.test.${crypto.randomBytes(6).toString("hex")}`
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

/** The first `n` messages of a subscription, or fewer if none come for a while (bounded: the test never hangs). */
const firstN = (messages: Stream.Stream<BusMessage>, n: number) =>
  Stream.runCollect(Stream.take(messages, n)).pipe(
    Effect.map(Chunk.toArray),
    Effect.timeoutTo({ duration: "3 seconds", onTimeout: () => [] as BusMessage[], onSuccess: (x) => x })
  )

/**
 * The bus port's contract, run against every adapter (the NATS one against a real server). On the
 * live clock: deadlines are real time.
 */
export const busContract = (name: string, network: () => Effect.Effect<BusNetwork, unknown, Scope.Scope>) =>
  describe(`Bus contract: ${name}`, () => {
    it.scopedLive("every subscriber whose pattern matches gets every message, in order, and no other (property)", () =>
      Effect.gen(function* () {
        const net = yield* network()
        const [a, b] = [yield* net.client, yield* net.client]
        const runs = fc.sample(fc.array(fc.tuple(fc.constantFrom("x.one", "x.two", "y.one", "x.one.deep"), fc.string({ maxLength: 20 })), { minLength: 1, maxLength: 25 }), 8)
        for (const sent of runs) {
          const root = fresh()
          const patterns = [`${root}.x.*`, `${root}.>`, `${root}.x.one`]
          const streams = yield* Effect.forEach(patterns, (p) => b.subscribe(p))
          for (const [suffix, body] of sent) yield* a.publish(`${root}.${suffix}`, bytes(body))
          const expected = patterns.map((p) =>
            sent.filter(([suffix]) => (p.endsWith(".>") ? true : p.endsWith(".x.*") ? /^x\.[a-z]+$/.test(suffix) : suffix === "x.one"))
          )
          const got = yield* Effect.forEach(streams, (s, i) => firstN(s, expected[i]!.length), { concurrency: "unbounded" })
          got.forEach((msgs, i) => expect(msgs.map((m) => [m.subject.slice(root.length + 1), text(m.data)])).toEqual(expected[i]!.map(([s, d]) => [s, d])))
        }
      })
    )

    it.scopedLive("members of a queue group share the messages, each going to exactly one; a plain subscriber still gets them all", () =>
      Effect.gen(function* () {
        const net = yield* network()
        const pub = yield* net.client
        const subject = `${fresh()}.work`
        const members = yield* Effect.forEach([1, 2, 3], () => Effect.flatMap(net.client, (c) => c.subscribe(subject, { queue: "workers" })))
        const watcher = yield* Effect.flatMap(net.client, (c) => c.subscribe(subject))
        const taken: string[][] = [[], [], []]
        yield* Effect.forEach(members, (m, i) => Effect.forkScoped(Stream.runForEach(m, (msg) => Effect.sync(() => taken[i]!.push(text(msg.data))))))
        const all = yield* Effect.fork(firstN(watcher, 60))
        const sent = Array.from({ length: 60 }, (_, i) => String(i))
        for (const body of sent) yield* pub.publish(subject, bytes(body))
        expect((yield* Fiber.join(all)).map((m) => text(m.data))).toEqual(sent)
        // Bounded wait for the members' share to arrive.
        for (let i = 0; i < 100 && taken.flat().length < 60; i++) yield* Effect.sleep("20 millis")
        expect(taken.flat().sort((x, y) => Number(x) - Number(y))).toEqual(sent)
        for (const share of taken) expect(share).toEqual([...share].sort((x, y) => Number(x) - Number(y)))
      })
    )

    it.scopedLive("requests are answered once by one replica of a queue group, within their deadline", () =>
      Effect.gen(function* () {
        const net = yield* network()
        const subject = `${fresh()}.echo`
        const served: number[] = []
        for (const replica of [1, 2, 3]) {
          const c = yield* net.client
          yield* c.serve(subject, (req) => Effect.sync(() => (served.push(replica), bytes(`${replica}:${text(req.data)}`))), { queue: "echo" })
        }
        const client = yield* net.client
        const answers = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => client.request(subject, bytes(String(i)), { timeoutMs: 2000 }))
        answers.forEach((a, i) => expect(text(a)).toMatch(new RegExp(`^[123]:${i}$`)))
        expect(served.length).toBe(30)
        expect(new Set(served).size).toBeGreaterThan(1)
      })
    )

    it.scopedLive("a request nobody answers in time fails with RequestTimedOut; one nobody serves fails at once with NoResponders", () =>
      Effect.gen(function* () {
        const net = yield* network()
        const root = fresh()
        const server = yield* net.client
        yield* server.serve(`${root}.slow`, () => Effect.as(Effect.sleep("1 second"), bytes("late")))
        // A handler that fails answers nothing: its requester's deadline decides.
        yield* server.serve(`${root}.broken`, () => Effect.fail("broken"))
        const client = yield* net.client
        const slow = yield* Effect.flip(client.request(`${root}.slow`, bytes("?"), { timeoutMs: 150 }))
        expect(slow).toMatchObject({ _tag: "RequestTimedOut", subject: `${root}.slow`, timeoutMs: 150 })
        expect((yield* Effect.flip(client.request(`${root}.broken`, bytes("?"), { timeoutMs: 150 })))._tag).toBe("RequestTimedOut")
        const none = yield* Effect.flip(client.request(`${root}.nobody`, bytes("?"), { timeoutMs: 10_000 }))
        expect(none).toMatchObject({ _tag: "NoResponders", subject: `${root}.nobody` })
      })
    )

    it.scopedLive("refuses an oversized message or a bad subject with a typed error, and sends nothing", () =>
      Effect.gen(function* () {
        const net = yield* network()
        const client = yield* net.client
        const subject = `${fresh()}.limit`
        const messages = yield* client.subscribe(subject)
        const big = new Uint8Array(client.maxPayload + 1)
        expect(yield* Effect.flip(client.publish(subject, big))).toMatchObject({ _tag: "MessageTooLarge", bytes: client.maxPayload + 1, max: client.maxPayload })
        expect((yield* Effect.flip(client.request(subject, big, { timeoutMs: 100 })))._tag).toBe("MessageTooLarge")
        for (const bad of ["", "a..b", "a.*", "a.>", "a b", "a.b*"]) expect((yield* Effect.flip(client.publish(bad, bytes("x"))))._tag).toBe("InvalidSubject")
        for (const bad of ["a.>.b", "a..b", "a.b>"]) expect((yield* Effect.flip(Effect.scoped(client.subscribe(bad))))._tag).toBe("InvalidSubject")
        yield* client.publish(subject, bytes("after"))
        expect((yield* firstN(messages, 1)).map((m) => text(m.data))).toEqual(["after"])
      })
    )

    it.scopedLive("drain answers the requests already taken, then every use of the drained client fails with BusFailure", () =>
      Effect.gen(function* () {
        const net = yield* network()
        const subject = `${fresh()}.drain`
        const server = yield* net.client
        const started = yield* Deferred.make<void>()
        yield* server.serve(subject, (req) => Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Effect.sleep("300 millis"), req.data)))
        const client = yield* net.client
        const inFlight = yield* Effect.fork(client.request(subject, bytes("taken"), { timeoutMs: 5000 }))
        yield* Deferred.await(started)
        yield* server.drain
        expect(text(yield* Fiber.join(inFlight))).toBe("taken")
        const after = yield* Effect.either(server.publish(subject, bytes("x")))
        expect(Either.isLeft(after) && after.left._tag).toBe("BusFailure")
        const serve = yield* Effect.either(Effect.scoped(server.serve(`${subject}.again`, () => Effect.succeed(bytes("x")))))
        expect(Either.isLeft(serve) && serve.left._tag).toBe("BusFailure")
      })
    )
  })
