import { Effect, Either } from "effect"
import { RequestTimedOut, type BusApi } from "../../domain/ports/bus.ts"
import { decodeChunk, encodeChunk } from "../../domain/pipeline/transport/wire.ts"

export type Fault = "drop" | "lose-ack" | "duplicate" | "corrupt" | undefined

/**
 * The bus as a faulty network shows it to the senders of chunks: `fault(k, attempt)` says what
 * befalls the `attempt`-th send (from 0) of the `k`-th distinct chunk seen (from 0): dropped (it
 * never arrives), arrived with its answer lost, arrived twice, or arrived with a byte flipped.
 * Faults follow each chunk, not the order in which concurrent senders' requests interleave.
 */
export const faulty = (bus: BusApi, fault: (k: number, attempt: number) => Fault): BusApi & { readonly faults: Record<string, number> } => {
  const seen = new Map<string, { readonly k: number; attempts: number }>()
  const faults: Record<string, number> = {}
  const timedOut = (subject: string, timeoutMs: number) => Effect.zipRight(Effect.sleep(`${timeoutMs} millis`), Effect.fail(RequestTimedOut.of({ subject, timeoutMs })))
  return {
    ...bus,
    faults,
    request: (subject, data, options) => {
      const chunk = decodeChunk(data)
      if (Either.isLeft(chunk)) return bus.request(subject, data, options)
      const key = `${subject} ${chunk.right.header.transfer} ${chunk.right.header.index}`
      const entry = seen.get(key) ?? { k: seen.size, attempts: 0 }
      seen.set(key, entry)
      const f = fault(entry.k, entry.attempts++)
      if (f !== undefined) faults[f] = (faults[f] ?? 0) + 1
      switch (f) {
        case "drop":
          return timedOut(subject, options.timeoutMs)
        case "lose-ack":
          return Effect.zipRight(Effect.ignore(bus.request(subject, data, options)), timedOut(subject, options.timeoutMs))
        case "duplicate":
          return Effect.zipRight(Effect.ignore(bus.request(subject, data, options)), bus.request(subject, data, options))
        case "corrupt": {
          const body = Uint8Array.from(chunk.right.body)
          if (body.length > 0) body[body.length >> 1]! ^= 0xff
          return bus.request(subject, encodeChunk({ header: chunk.right.header, body }), options)
        }
        default:
          return bus.request(subject, data, options)
      }
    }
  }
}

/** Every fault in turn, each on its chunk's first send only: the next send of that chunk goes through. */
export const firstSendFaults = (every: number) => (k: number, attempt: number): Fault =>
  attempt > 0 || k % every !== 0 ? undefined : (["drop", "lose-ack", "duplicate", "corrupt"] as const)[(k / every) % 4]
