/**
 * A node's link to the bus, measured before it registers, so plans can count what crossing a
 * stage boundary costs on it. The node echoes messages to itself through the bus: each round
 * trip carries the payload out and back twice (the request and the reply both leave the node and
 * both return), so bytes sent over the time taken is what the link carries in each direction at
 * once.
 */
import { Effect } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { Subjects } from "../domain/network/subjects.ts"

/** Payload of one echo: large enough that per-message latency is a small share of its time. */
const PROBE_BYTES = 256 * 1024
const PROBE_TRIPS = 8

/** Bytes per second the node's link carries each way, from echoes on its own probe subject. */
export const measureLink = (node: string, timeoutMs: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const bus = yield* Bus
      const subject = Subjects.linkProbe(node)
      yield* bus.serve(subject, (m) => Effect.succeed(m.data))
      const payload = new Uint8Array(Math.min(PROBE_BYTES, Math.floor(bus.maxPayload / 2))).fill(0x5a)
      // One trip first: connections and buffers warm up outside the measurement.
      yield* bus.request(subject, payload, { timeoutMs })
      const start = performance.now()
      for (let i = 0; i < PROBE_TRIPS; i++) yield* bus.request(subject, payload, { timeoutMs })
      const seconds = Math.max((performance.now() - start) / 1000, 1e-6)
      return (2 * PROBE_TRIPS * payload.length) / seconds
    })
  )
