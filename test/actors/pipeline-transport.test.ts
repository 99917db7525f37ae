import { randomBytes } from "node:crypto"
import { Effect, Either, Fiber, Schedule } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeTensorSender, receiveTensors, type TransportSettings } from "../../actors/pipeline-transport.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { faulty, firstSendFaults } from "../support/faulty-bus.ts"
import { testNatsUrl } from "../support/jetstream-fixtures.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"

const base: TransportSettings = {
  timeoutMs: 500,
  maxRetries: 2,
  backoffBaseMs: 10,
  breaker: { threshold: 5, resetMs: 10_000 },
  chunkBytes: 16 * 1024,
  compression: "none",
  maxBufferBytes: 64 * 1024 * 1024
}
const receiving = { maxBufferBytes: 64 * 1024 * 1024, staleMs: 60_000 }

/** A subject of this run's own on the shared server. */
const subject = () => `blyan.test.pipeline.${randomBytes(6).toString("hex")}.stage.1.act`
const tensor = (bytes: number) => new Uint8Array(randomBytes(bytes))
/** Compressible: what gzip is for (activations of a small model are not random bytes). */
const smooth = (bytes: number) => Uint8Array.from({ length: bytes }, (_, i) => Math.floor(128 + 100 * Math.sin(i / 50)))

const nats = makeNatsBus([testNatsUrl])
/** Tensors compared by digest: a deep comparison of large arrays would hold the event loop past the transport's deadlines. */
const digest = (bytes: Uint8Array) => sha256Hex(bytes)

describe("the pipeline's transport over the real nats-server", () => {
  it.scopedLive("a tensor arrives byte-identical, in chunks of the configured size, with and without gzip; the receiver's buffer is empty once it is taken", () =>
    Effect.gen(function* () {
      for (const compression of ["none", "gzip"] as const) {
        const at = subject()
        const receiver = yield* receiveTensors(at, receiving)
        const sender = yield* makeTensorSender({ ...base, compression })
        const sent = [tensor(300_000), smooth(500_000), new Uint8Array(0)]
        for (const t of sent) yield* sender.send(at, t)
        for (const t of sent) expect(digest((yield* receiver.take).tensor)).toBe(digest(t))
        expect(yield* receiver.held).toBe(0)
        const chunks = sender.stats().chunks
        // gzip sends fewer chunks for the smooth tensor; without it, exactly ceil(size / chunk) each.
        if (compression === "none") expect(chunks).toBe(Math.ceil(300_000 / base.chunkBytes) + Math.ceil(500_000 / base.chunkBytes) + 1)
        else expect(chunks).toBeLessThan(Math.ceil(300_000 / base.chunkBytes) + Math.ceil(500_000 / base.chunkBytes) + 1)
        expect(sender.stats().retries).toBe(0)
      }
    }).pipe(Effect.provideServiceEffect(Bus, nats))
  )

  it.scopedLive("chunks dropped, acks lost, chunks duplicated and corrupted: every tensor arrives exactly once and byte-identical, and the sender's figures tell what it met", () =>
    Effect.gen(function* () {
      const bus = yield* nats
      const at = subject()
      const receiver = yield* receiveTensors(at, receiving).pipe(Effect.provideService(Bus, bus))
      // Every other chunk meets a fault on its first send, so no chunk runs out of its two retries.
      const wire = faulty(bus, firstSendFaults(2))
      const sender = yield* makeTensorSender({ ...base, timeoutMs: 600 }).pipe(Effect.provideService(Bus, wire))
      const sent = Array.from({ length: 4 }, () => tensor(100_000))
      for (const t of sent) yield* sender.send(at, t)
      for (const t of sent) expect(digest((yield* receiver.take).tensor)).toBe(digest(t))
      // Nothing more comes: a duplicate never delivered a tensor twice.
      expect(Either.isLeft(yield* Effect.either(Effect.timeout(receiver.take, "300 millis")))).toBe(true)
      expect(yield* receiver.held).toBe(0)
      expect(Object.keys(wire.faults).sort()).toEqual(["corrupt", "drop", "duplicate", "lose-ack"])
      const stats = sender.stats()
      expect(stats.damaged).toBe(wire.faults.corrupt)
      // A request slow under load counts as unreachable too: at least the scripted losses.
      expect(stats.unreachable).toBeGreaterThanOrEqual(wire.faults.drop! + wire.faults["lose-ack"]!)
      expect(stats.retries).toBe(stats.damaged + stats.unreachable)
    })
  )

  it.scopedLive("a receiver whose consumer stalls answers with backpressure: the sender waits, without spending its retries, and completes once the consumer takes; one that never takes is a BackpressureTimeout", () =>
    Effect.gen(function* () {
      const at = subject()
      const receiver = yield* receiveTensors(at, { maxBufferBytes: 300_000, staleMs: 60_000 })
      const sender = yield* makeTensorSender({ ...base, timeoutMs: 1000 })
      const sent = [tensor(200_000), tensor(200_000), tensor(200_000)]
      const sending = yield* Effect.fork(Effect.forEach(sent, (t) => sender.send(at, t)))
      // The second tensor does not fit beside the first: the sender is told to wait.
      yield* Effect.repeat(Effect.sync(() => sender.stats().backpressureWaits), { until: (n) => n > 0, schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo("20 seconds")) })
      expect(yield* receiver.held).toBeLessThanOrEqual(300_000)
      for (const t of sent) expect(digest((yield* receiver.take).tensor)).toBe(digest(t))
      yield* Fiber.join(sending)
      expect(sender.stats().retries).toBe(0)

      const stalled = subject()
      yield* receiveTensors(stalled, { maxBufferBytes: 100_000, staleMs: 60_000 })
      const impatient = yield* makeTensorSender({ ...base, timeoutMs: 200 })
      const refused = yield* Effect.flip(impatient.send(stalled, tensor(150_000)))
      expect(refused._tag).toBe("BackpressureTimeout")
      expect(refused.message).toMatch(/stayed full for \d+ ms: holding \d+ of 100000 bytes/)
    }).pipe(Effect.provideServiceEffect(Bus, nats))
  )

  it.scopedLive("a peer nobody serves: each send fails as unreachable until the breaker opens, then at once; after its reset one probe goes, and with the receiver back it succeeds and closes the breaker", () =>
    Effect.gen(function* () {
      const at = subject()
      const sender = yield* makeTensorSender({ ...base, maxRetries: 0, breaker: { threshold: 3, resetMs: 1500 } })
      for (let i = 0; i < 3; i++) expect((yield* Effect.flip(sender.send(at, tensor(10))))._tag).toBe("PeerUnreachable")
      expect(sender.breaker(at)._tag).toBe("Open")
      expect((yield* Effect.flip(sender.send(at, tensor(10))))._tag).toBe("CircuitOpen")
      expect(sender.stats().breakerOpened).toBe(1)
      const receiver = yield* receiveTensors(at, receiving)
      // Still open before its reset: the receiver being back changes nothing yet.
      expect((yield* Effect.flip(sender.send(at, tensor(10))))._tag).toBe("CircuitOpen")
      yield* Effect.sleep("1600 millis")
      const t = tensor(40_000)
      yield* sender.send(at, t)
      expect(sender.breaker(at)).toEqual({ _tag: "Closed", failures: 0 })
      expect(digest((yield* receiver.take).tensor)).toBe(digest(t))
    }).pipe(Effect.provideServiceEffect(Bus, nats))
  )

  it.scopedLive("a message that is no chunk is refused for good and not retried; a transfer its sender abandoned is forgotten, with the bytes it held, once it has been silent for staleMs", () =>
    Effect.gen(function* () {
      const bus = yield* nats
      const at = subject()
      const receiver = yield* receiveTensors(at, { maxBufferBytes: 1_000_000, staleMs: 300 }).pipe(Effect.provideService(Bus, bus))
      const junk = new TextDecoder().decode(yield* bus.request(at, new TextEncoder().encode("not a chunk"), { timeoutMs: 1000 }))
      expect(JSON.parse(junk)).toMatchObject({ retry: false })
      // Every chunk after the third is lost for good: the sender gives up, the receiver holds three.
      const cut = yield* makeTensorSender({ ...base, maxRetries: 1, timeoutMs: 1000 }).pipe(Effect.provideService(Bus, faulty(bus, (k) => (k >= 3 ? "drop" : undefined))))
      expect((yield* Effect.flip(cut.send(at, tensor(100_000))))._tag).toBe("PeerUnreachable")
      expect(yield* receiver.held).toBe(3 * base.chunkBytes)
      yield* Effect.sleep("350 millis")
      const sender = yield* makeTensorSender(base).pipe(Effect.provideService(Bus, bus))
      const t = tensor(1000)
      yield* sender.send(at, t)
      expect(digest((yield* receiver.take).tensor)).toBe(digest(t))
      expect(yield* receiver.held).toBe(0)
    })
  )
})
