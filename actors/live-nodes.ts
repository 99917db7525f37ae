/**
 * The nodes heard from on the bus: each node's latest heartbeat (on its own subject), kept live
 * until the scope closes. Heartbeats are advisory: what is not one is skipped.
 */
import { Effect, Stream } from "effect"
import { decodeHeartbeat } from "../domain/network/heartbeat.ts"
import type { LiveNode } from "../domain/network/replica-choice.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { Bus } from "../domain/ports/bus.ts"

export const followHeartbeats = Effect.gen(function* () {
  const bus = yield* Bus
  const clock = yield* Effect.clock
  const live = new Map<string, LiveNode>()
  const heartbeats = yield* bus.subscribe(Subjects.allHeartbeats)
  yield* Effect.forkScoped(
    Stream.runForEach(heartbeats, (m) =>
      Effect.sync(() => {
        const hb = decodeHeartbeat(m.data)
        // A heartbeat counts only on its node's own subject.
        if (hb !== undefined && m.subject === Subjects.nodeHeartbeat(hb.node)) live.set(hb.node, { status: hb.status, queue: hb.queue, at: clock.unsafeCurrentTimeMillis() })
      })
    )
  )
  return live as ReadonlyMap<string, LiveNode>
})
