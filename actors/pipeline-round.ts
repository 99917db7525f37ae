/**
 * A training round through a pipeline, on its epoch's stream: `RoundStarted` when it begins; a
 * step whose stage failed is recorded as `StageFailed`, naming the stage's node, and taken again
 * after a backoff that doubles with each failure of the round (the failed attempt changed nothing:
 * updates apply only once every stage has answered; the wait lets a breaker the failure opened
 * reach its probe, and a node a moment away come back); a node
 * that fails a second time has its stage given to a spare node (`StageReassigned`) while one is
 * left; once the round has failed `maxFailures` times it falls back to a single node
 * (`FallbackActivated`) and takes its remaining steps in this process.
 */
import { Effect } from "effect"
import { newEvent, type EventData, type EventType } from "../domain/ledger/events.ts"
import type { InvalidEvent, StoreFailure, WrongExpectedRevision } from "../domain/ledger/errors.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import type { Plan } from "../domain/pipeline/plan.ts"
import { PipelineFault } from "./stage-worker.ts"
import type { TakeStep } from "./trainer.ts"

/** How a round's events reach its epoch's stream. */
export type EpochRecorder<E, R> = <T extends EventType>(type: T, data: EventData<T>) => Effect.Effect<unknown, E, R>

/** Append each event to the epoch's stream, wherever the stream stands. */
export const appendingToEpoch =
  (epoch: string): EpochRecorder<WrongExpectedRevision | InvalidEvent | StoreFailure, EventStore> =>
  (type, data) =>
    Effect.flatMap(EventStore, (store) => store.append(Streams.epoch(epoch), [newEvent(type, data)], "any"))

/** How a round bears failures: how many before it falls back, and the wait before the first retry. */
export type RoundSettings = { readonly maxFailures: number; readonly backoffMs: number }

export const pipelineRound = <E, R, E2, R2, E3, R3>(
  plan: Plan,
  { maxFailures, backoffMs }: RoundSettings,
  /** A step through the pipeline on these nodes, one per stage: fails with the stage at fault. */
  piped: (nodes: ReadonlyArray<string>) => TakeStep<PipelineFault | E, R>,
  /** The same step in this process. */
  alone: TakeStep<E2, R2>,
  /** Nodes that may take over a failed stage now, in order of preference. */
  spares: () => ReadonlyArray<string>,
  record: EpochRecorder<E3, R3>
) =>
  Effect.gen(function* () {
    const { epoch, round, planId } = plan
    yield* record("RoundStarted", { epoch, round, planId })
    const nodes = plan.stages.map((s) => s.node)
    const failedBefore = new Set<string>()
    let failures = 0
    let fallback = false
    const step: TakeStep<E | E2 | E3, R | R2 | R3> = (weights, state, batch, config, n) =>
      Effect.gen(function* () {
        while (!fallback) {
          const attempt = yield* Effect.either(piped(nodes)(weights, state, batch, config, n))
          if (attempt._tag === "Right") return attempt.right
          const e: PipelineFault | E = attempt.left
          if (!(e instanceof PipelineFault)) return yield* Effect.fail(e as E)
          failures++
          const node = nodes[e.stage] ?? `stage ${e.stage}`
          yield* record("StageFailed", { epoch, round, stage: e.stage, node, reason: `step ${n}: ${e.message}` })
          if (failures >= maxFailures) {
            fallback = true
            yield* record("FallbackActivated", { epoch, round, reason: `${failures} stage failures in this round; the last: ${e.message}` })
          } else if (failedBefore.has(node)) {
            const to = spares().find((n) => !nodes.includes(n) && !failedBefore.has(n))
            if (to !== undefined) {
              nodes[e.stage] = to
              yield* record("StageReassigned", { epoch, round, stage: e.stage, from: node, to })
            }
          }
          failedBefore.add(node)
          if (!fallback) yield* Effect.sleep(`${backoffMs * 2 ** Math.min(failures - 1, 10)} millis`)
        }
        return yield* alone(weights, state, batch, config, n)
      })
    return step
  })
