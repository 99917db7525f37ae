/**
 * A node's heartbeat (`Subjects.nodeHeartbeat`): that it is alive, its lifecycle state and its
 * load. Heartbeats are not events: the router keeps the latest of each node in memory, to skip
 * nodes that went quiet and to send work where the queue is shortest.
 */
import { Either, Schema } from "effect"
import { NodeId } from "./registration.ts"

const Count = Schema.Int.pipe(Schema.nonNegative())

export const Heartbeat = Schema.Struct({
  node: NodeId,
  /** The lifecycle state (`nodeStatus`), e.g. "serving.steady". */
  status: Schema.String.pipe(Schema.maxLength(64)),
  /** Forward requests taken and not yet answered. */
  queue: Count,
  /** Forward requests answered since the node started. */
  served: Count
})
export type Heartbeat = typeof Heartbeat.Type

const decode = Schema.decodeUnknownEither(Schema.parseJson(Heartbeat))
const encoder = new TextEncoder()

export const encodeHeartbeat = (h: Heartbeat): Uint8Array => encoder.encode(JSON.stringify(h))

/** A heartbeat from its bytes, or undefined for anything that is not one (heartbeats are advisory). */
export const decodeHeartbeat = (data: Uint8Array): Heartbeat | undefined => Either.getOrUndefined(decode(new TextDecoder().decode(data)))
