import { Config, Effect } from "effect"
import type { RouterSettings } from "../actors/chat-service.ts"
import { setting } from "./config.ts"

/**
 * The network's timings and the router's policy, from BLYAN_* variables: how long an expert
 * request may take, how often nodes heartbeat, what share of expert calls is spot-checked.
 */
const positiveMs = (name: string, fallback: number) => Config.integer(name).pipe(Config.validate({ message: "a positive number of milliseconds", validation: (n) => n > 0 }), Config.withDefault(fallback))

export const networkTimings = setting(
  Config.all({
    timeoutMs: positiveMs("BLYAN_REQUEST_TIMEOUT_MS", 5000),
    heartbeatMs: positiveMs("BLYAN_HEARTBEAT_MS", 1000),
    // How long a poll of the witnesses waits for their answers.
    witnessWaitMs: positiveMs("BLYAN_WITNESS_WAIT_MS", 1000)
  })
)

export const routerSettings = Effect.gen(function* () {
  const { timeoutMs, heartbeatMs } = yield* networkTimings
  const spotCheckRate = yield* setting(
    Config.number("BLYAN_SPOTCHECK_RATE").pipe(Config.validate({ message: "a share between 0 and 1", validation: (r) => r >= 0 && r <= 1 }), Config.withDefault(0.05))
  )
  const settings: RouterSettings = {
    timeoutMs,
    attempts: 4,
    spotCheckRate,
    // Three missed heartbeats and a node is not chosen.
    staleMs: heartbeatMs * 3,
    banAfter: 3,
    banMs: 60_000,
    seed: Math.floor(Math.random() * 2 ** 31)
  }
  return settings
})
