import { Config, Effect } from "effect"
import type { RouterSettings } from "../actors/chat-service.ts"
import { setting } from "./config.ts"
import { defaultPoLSettings } from "../domain/pol/evaluation.ts"

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
  }).pipe(
    // Three missed heartbeats and a node is taken as gone (not chosen for an expert or a stage).
    Config.map((t) => ({ ...t, staleMs: t.heartbeatMs * 3 }))
  )
)

export const routerSettings = Effect.gen(function* () {
  const { timeoutMs, staleMs } = yield* networkTimings
  const spotCheckRate = yield* setting(
    Config.number("BLYAN_SPOTCHECK_RATE").pipe(Config.validate({ message: "a share between 0 and 1", validation: (r) => r >= 0 && r <= 1 }), Config.withDefault(0.05))
  )
  const settings: RouterSettings = {
    timeoutMs,
    attempts: 4,
    spotCheckRate,
    staleMs,
    banAfter: 3,
    banMs: 60_000,
    seed: Math.floor(Math.random() * 2 ** 31)
  }
  return settings
})

/**
 * How rounds decide, from BLYAN_* variables: the least relative improvement (ε), the least share
 * of batches won, and how long validators have from a round's close before it is decided.
 */
export const roundSettings = setting(
  Config.all({
    settings: Config.all({
      epsilon: Config.number("BLYAN_POL_EPSILON").pipe(Config.validate({ message: "a share between 0 and 1", validation: (r) => r >= 0 && r < 1 }), Config.withDefault(defaultPoLSettings.epsilon)),
      minWinShare: Config.number("BLYAN_POL_MIN_WIN_SHARE").pipe(
        Config.validate({ message: "a share between 0 and 1", validation: (r) => r >= 0 && r <= 1 }),
        Config.withDefault(defaultPoLSettings.minWinShare)
      ),
      batches: Config.succeed(defaultPoLSettings.batches)
    }),
    deadlineMs: positiveMs("BLYAN_ROUND_DEADLINE_MS", 120_000)
  })
)
