/**
 * The pipeline's transport: tensors (activations, gradients) sent over the bus in chunks, each
 * acknowledged by the receiver. The sender retries a chunk that was lost or damaged (with
 * exponential backoff, at most `maxRetries` times), waits while the receiver says its buffer is
 * full, and keeps a circuit breaker per peer; a refusal that sending again cannot cure is not
 * retried. The receiver reassembles by index, ignores duplicates, refuses damaged chunks, holds
 * at most `maxBufferBytes` (partial and delivered-but-not-taken tensors together), and forgets a
 * transfer its sender abandoned.
 */
import { randomBytes } from "node:crypto"
import { gunzipSync, gzipSync } from "node:zlib"
import { Clock, Effect, Either, Queue, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { closedBreaker, permit, settle, type BreakerSettings, type BreakerState } from "../domain/pipeline/transport/breaker.ts"
import { ChunkRefused, Reassembly, splitChunks, type Chunk, type Encoding } from "../domain/pipeline/transport/chunks.ts"
import { decodeChunk, decodeChunkAnswer, encodeChunk, encodeChunkAnswer } from "../domain/pipeline/transport/wire.ts"
import { noTransport, type TransportCounts } from "../domain/pipeline/step-report.ts"

export type TransportSettings = {
  /** One chunk's request deadline. */
  readonly timeoutMs: number
  /** Sends of a chunk after its first, when it was lost or damaged. */
  readonly maxRetries: number
  /** The first retry's wait; each next one doubles it. */
  readonly backoffBaseMs: number
  readonly breaker: BreakerSettings
  /** The most payload bytes in one chunk (less where the bus carries less). */
  readonly chunkBytes: number
  readonly compression: Encoding
  /** What a receiver holds at most before it answers with backpressure. */
  readonly maxBufferBytes: number
}

/** The peer's breaker is open: no call goes until its reset time has passed. */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", { peer: Schema.String, message: Schema.String }) {}
/** The peer could not be reached (no answer, nobody listening) on any try. */
export class PeerUnreachable extends Schema.TaggedError<PeerUnreachable>()("PeerUnreachable", { peer: Schema.String, attempts: Schema.Int, message: Schema.String }) {}
/** The receiver stayed full for longer than a sender waits. */
export class BackpressureTimeout extends Schema.TaggedError<BackpressureTimeout>()("BackpressureTimeout", { peer: Schema.String, waitedMs: Schema.Number, message: Schema.String }) {}

export type TransportError = CircuitOpen | PeerUnreachable | BackpressureTimeout | ChunkRefused


/** Room in a message for a chunk's frame header beside its bytes. */
const HEADER_ROOM = 1024
/** A sender waits this many chunk deadlines at most for a full receiver to make room. */
const BACKPRESSURE_DEADLINES = 10

const sleep = (ms: number) => Effect.sleep(`${ms} millis`)

/**
 * A sender of tensors to the receivers on the bus, keeping one breaker per peer: the peer's
 * subject, or the name given for it (a node), so that a breaker outlives the subjects of one
 * attempt and a node that failed is probed, not hammered, by the next.
 */
export const makeTensorSender = (settings: TransportSettings) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const breakers = new Map<string, BreakerState>()
    // What the sender has met so far, for the operator and the metrics.
    const stats = { ...noTransport }
    const breakerOf = (peer: string) => breakers.get(peer) ?? closedBreaker
    const setBreaker = (peer: string, s: BreakerState) => {
      if (s._tag === "Open" && breakerOf(peer)._tag !== "Open") stats.breakerOpened++
      breakers.set(peer, s)
    }
    const chunkBytes = Math.max(1, Math.min(settings.chunkBytes, bus.maxPayload - HEADER_ROOM))

    const sendChunk = (peer: string, chunk: Chunk, key: string) =>
      Effect.gen(function* () {
        const message = encodeChunk(chunk)
        let failed = 0
        let waits = 0
        let waitedMs = 0
        let lastReason = ""
        for (;;) {
          const asked = permit(breakerOf(key), yield* Clock.currentTimeMillis)
          setBreaker(key, asked.state)
          if (!asked.allowed) return yield* new CircuitOpen({ peer, message: `the circuit to ${key} is open after repeated failures; it is tried again once its reset time has passed` })
          const answer = yield* Effect.either(bus.request(peer, message, { timeoutMs: settings.timeoutMs }))
          if (Either.isLeft(answer) && (answer.left._tag === "MessageTooLarge" || answer.left._tag === "InvalidSubject"))
            return yield* new ChunkRefused({ message: answer.left.message, retry: false })
          const decoded = Either.isRight(answer) ? decodeChunkAnswer(answer.right) : undefined
          setBreaker(key, settle(breakerOf(key), decoded !== undefined, yield* Clock.currentTimeMillis, settings.breaker))
          if (decoded !== undefined && "ack" in decoded) return
          if (decoded !== undefined && "backpressure" in decoded) {
            stats.backpressureWaits++
            waits++
            if (waitedMs >= BACKPRESSURE_DEADLINES * settings.timeoutMs)
              return yield* new BackpressureTimeout({ peer, waitedMs, message: `${peer} stayed full for ${waitedMs} ms: ${decoded.backpressure}` })
            // A full receiver is no failure: the wait grows, the retries are kept for losses.
            const wait = Math.min(settings.timeoutMs, settings.backoffBaseMs * 2 ** Math.min(waits - 1, 16))
            waitedMs += wait
            yield* sleep(wait)
            continue
          }
          if (decoded !== undefined && "refused" in decoded) {
            if (!decoded.retry) return yield* new ChunkRefused({ message: `${peer} refused a chunk: ${decoded.refused}`, retry: false })
            stats.damaged++
            lastReason = decoded.refused
          } else {
            stats.unreachable++
            lastReason = Either.isLeft(answer) ? answer.left.message : `${peer} answered in another protocol`
          }
          failed++
          if (failed > settings.maxRetries)
            return yield* new PeerUnreachable({ peer, attempts: failed, message: `a chunk to ${peer} failed ${failed} times; the last: ${lastReason}` })
          stats.retries++
          yield* sleep(settings.backoffBaseMs * 2 ** (failed - 1))
        }
      })

    /** Send `tensor` to the receiver on `peer` (whose breaker is `key`'s), chunk after chunk; done when every chunk is acknowledged. */
    const send = (peer: string, tensor: Uint8Array, key = peer): Effect.Effect<void, TransportError> =>
      Effect.gen(function* () {
        const payload = settings.compression === "gzip" ? gzipSync(tensor) : tensor
        const transfer = randomBytes(12).toString("hex")
        for (const chunk of splitChunks(transfer, payload, chunkBytes, settings.compression)) {
          yield* sendChunk(peer, chunk, key)
          stats.chunks++
        }
      })

    return { send, breaker: (peer: string) => breakerOf(peer), stats: (): TransportCounts => ({ ...stats }) }
  })

export type TensorSender = Effect.Effect.Success<ReturnType<typeof makeTensorSender>>

export type ReceivedTensor = { readonly transfer: string; readonly tensor: Uint8Array }

/** Transfers remembered as delivered, so that a chunk sent again after its ack was lost is a duplicate, not a new transfer. */
const REMEMBERED = 4096

/**
 * Receive tensors sent to `subject` until the scope closes: `take` waits for the next one
 * delivered whole. A transfer silent for `staleMs` is dropped with what it held.
 */
export const receiveTensors = (subject: string, settings: { readonly maxBufferBytes: number; readonly staleMs: number }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const partial = new Map<string, { readonly reassembly: Reassembly; at: number }>()
    const delivered = new Set<string>()
    const queue = yield* Queue.unbounded<ReceivedTensor & { readonly size: number }>()
    let held = 0
    const answer = encodeChunkAnswer

    yield* bus.serve(subject, (m) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const [id, p] of partial)
          if (p.at < now - settings.staleMs) {
            held -= p.reassembly.held
            partial.delete(id)
          }
        const decoded = decodeChunk(m.data)
        if (Either.isLeft(decoded)) return answer({ refused: decoded.left.message, retry: decoded.left.retry })
        const chunk = decoded.right
        const { transfer, index } = chunk.header
        if (delivered.has(transfer)) return answer({ ack: "duplicate" })
        const entry = partial.get(transfer) ?? { reassembly: Reassembly.start(chunk.header), at: now }
        if (!entry.reassembly.has(index) && held + chunk.body.length > settings.maxBufferBytes)
          return answer({ backpressure: `holding ${held} of ${settings.maxBufferBytes} bytes` })
        const before = entry.reassembly.held
        const accepted = entry.reassembly.accept(chunk)
        if (Either.isLeft(accepted)) return answer({ refused: accepted.left.message, retry: accepted.left.retry })
        const outcome = accepted.right
        if (outcome._tag === "Duplicate") return answer({ ack: "duplicate" })
        if (outcome._tag === "Stored") {
          partial.set(transfer, entry)
          entry.at = now
          held += outcome.held - before
          return answer({ ack: "stored" })
        }
        partial.delete(transfer)
        held -= before
        const tensor = outcome.encoding === "gzip" ? Either.try(() => new Uint8Array(gunzipSync(outcome.payload, { maxOutputLength: settings.maxBufferBytes }))) : Either.right(outcome.payload)
        if (Either.isLeft(tensor)) return answer({ refused: `${transfer} is not gzip within ${settings.maxBufferBytes} bytes`, retry: false })
        delivered.add(transfer)
        if (delivered.size > REMEMBERED) delivered.delete(delivered.values().next().value!)
        held += tensor.right.length
        yield* Queue.offer(queue, { transfer, tensor: tensor.right, size: tensor.right.length })
        return answer({ ack: "complete" })
      })
    )

    return {
      /** The next tensor delivered whole; its bytes leave the buffer. */
      take: Effect.map(Queue.take(queue), ({ transfer, tensor, size }) => {
        held -= size
        return { transfer, tensor } satisfies ReceivedTensor
      }),
      /** Bytes held now, partial and delivered. */
      held: Effect.sync(() => held)
    }
  })
