import { Effect, Stream } from "effect"
import type { BusApi } from "../../domain/ports/bus.ts"
import { decodeHeartbeat } from "../../domain/network/heartbeat.ts"
import { Subjects } from "../../domain/network/subjects.ts"

/**
 * Once `node`'s heartbeats show it has answered a request more than when this began, `kill` it:
 * how a test (or a bench) kills a node in the middle of serving. Ends with the time of the kill.
 */
export const killWhenServing = (bus: BusApi, node: string, kill: () => void) =>
  Effect.scoped(
    Effect.gen(function* () {
      const beats = yield* bus.subscribe(Subjects.nodeHeartbeat(node))
      let baseline: number | undefined
      let at = 0
      yield* Stream.runForEachWhile(beats, (m) =>
        Effect.sync(() => {
          const served = decodeHeartbeat(m.data)?.served ?? 0
          baseline ??= served
          if (served <= baseline) return true
          kill()
          at = performance.now()
          return false
        })
      )
      return at
    })
  )
