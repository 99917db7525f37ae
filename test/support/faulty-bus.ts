import { Effect, Either } from "effect"
import { RequestTimedOut, type BusApi } from "../../domain/ports/bus.ts"
import { decodeChunk, encodeChunk } from "../../domain/pipeline/transport/wire.ts"

export type Fault = "drop" | "lose-ack" | "duplicate" | "corrupt" | undefined

/**
 * The bus as a faulty network shows it to the sender: by the n-th request, a chunk is dropped (it
 * never arrives), arrives but its answer is lost, arrives twice, or arrives with a byte flipped.
 */
export const faulty = (bus: BusApi, fault: (n: number) => Fault): BusApi & { readonly faults: Record<string, number> } => {
  let n = 0
  const faults: Record<string, number> = {}
  const timedOut = (subject: string, timeoutMs: number) => Effect.zipRight(Effect.sleep(`${timeoutMs} millis`), Effect.fail(RequestTimedOut.of({ subject, timeoutMs })))
  return {
    ...bus,
    faults,
    request: (subject, data, options) => {
      const f = fault(n++)
      if (f !== undefined) faults[f] = (faults[f] ?? 0) + 1
      switch (f) {
        case "drop":
          return timedOut(subject, options.timeoutMs)
        case "lose-ack":
          return Effect.zipRight(Effect.ignore(bus.request(subject, data, options)), timedOut(subject, options.timeoutMs))
        case "duplicate":
          return Effect.zipRight(Effect.ignore(bus.request(subject, data, options)), bus.request(subject, data, options))
        case "corrupt": {
          const chunk = Either.getOrThrow(decodeChunk(data))
          const body = Uint8Array.from(chunk.body)
          if (body.length > 0) body[body.length >> 1]! ^= 0xff
          return bus.request(subject, encodeChunk({ header: chunk.header, body }), options)
        }
        default:
          return bus.request(subject, data, options)
      }
    }
  }
}

