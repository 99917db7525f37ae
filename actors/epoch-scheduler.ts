/**
 * The epoch scheduler: it hosts a training epoch's machine (`domain/machines/epoch.ts`) on the
 * log. It records what the epoch runs (`EpochScheduled`), plans it on the registered nodes that
 * are live (their measured speed, memory and link), promotes and freezes that plan, then trains
 * `rounds` rounds of `steps` steps through the pipeline (`pipelineRound`: stage failures retried,
 * reassigned, or a fallback to this process). Each completed round leaves a checkpoint blob
 * (`RoundCompleted`); a plan promoted for the epoch meanwhile takes over at the next round. At
 * the end the held-out evaluation decides: improved weights become the model's blocks through the
 * same path as local training and the epoch completes; otherwise it is rolled back.
 *
 * Started again after a restart, it reads where the epoch stands from the log
 * (`epoch-progress.ts`) and goes on from there: a plan promoted but not frozen is frozen, a round
 * cut off is recorded as failed and run again from the last checkpoint, and weights that became
 * blocks before the epoch's completion was recorded are not trained again.
 */
import { Effect, Either, Schema } from "effect"
import { Streams } from "../domain/ledger/streams.ts"
import type { InvalidEvent, MalformedEvent, StoreFailure } from "../domain/ledger/errors.ts"
import { newEvent, type EventData } from "../domain/ledger/events.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { BlobStore, type BlobStoreFailure } from "../domain/ports/blob-store.ts"
import { decodeCheckpoint, encodeCheckpoint, type TrainingState } from "../domain/model/training-state.ts"
import { defaultSpec, type ModelSpec } from "../domain/model/spec.ts"
import { boundaryBytesPerToken, dtypeBytes, forwardFlopsPerToken, trainingLayerLoads } from "../domain/pipeline/cost.ts"
import { epochProgress, epochState, roundId } from "../domain/pipeline/epoch-progress.ts"
import { improvesHeldOut, noGainReason } from "../domain/machines/epoch.ts"
import { partition, type Device } from "../domain/pipeline/partition.ts"
import { derivedPlanId, type Plan, type PlanStage } from "../domain/pipeline/plan.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { NodesProjection, activeDevices } from "../domain/projections/nodes.ts"
import { PlansProjection } from "../domain/projections/plans.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import { foldStream } from "./command.ts"
import { pipelineRound, type EpochRecorder, type RoundSettings } from "./pipeline-round.ts"
import { promotePlan } from "./planner.ts"
import { validationContext } from "../domain/pipeline/validate.ts"
import type { PipelineFault } from "./stage-worker.ts"
import type { TakeStep, TrainingRun, TrainReport, TrainSettings } from "./trainer.ts"

/** The epoch cannot run as asked; nothing is recorded. */
export class EpochRefused extends Schema.TaggedError<EpochRefused>()("EpochRefused", { message: Schema.String }) {}

/** What an epoch runs, as `EpochScheduled` records it. */
export type EpochOrder = Omit<EventData<"EpochScheduled">, "corpus" | "heldOut">

export interface EpochTexts {
  readonly corpus: Uint8Array
  readonly heldOut?: Uint8Array
}

export interface EpochWork<E, R, E2, R2, E3, R3> {
  readonly order: EpochOrder
  readonly texts: EpochTexts
  /** Ids of the registered nodes that may take a stage now (heard from lately). */
  readonly live: () => ReadonlyArray<string>
  /** A step through a pipeline of these layer ranges on these nodes (one per range): fails with the stage at fault. */
  readonly piped: (stages: ReadonlyArray<PlanStage>) => (nodes: ReadonlyArray<string>) => TakeStep<PipelineFault | E, R>
  /** The same step in this process. */
  readonly alone: TakeStep<E2, R2>
  readonly round: RoundSettings
  /** The pause at each boundary between rounds. */
  readonly intervalMs: number
  /** The training run itself (`trainOnLedger` with its signer): these settings, this step, where it resumes. */
  readonly train: (settings: TrainSettings, step: EpochStep<E | E2, R | R2>, run: TrainingRun) => Effect.Effect<TrainReport, E3, R3>
}

/** A step of the epoch: a round's step, which may also read the log, keep a checkpoint and find the epoch taken over. */
export type EpochStep<E, R> = TakeStep<E | EpochRefused | InvalidEvent | StoreFailure | MalformedEvent | BlobStoreFailure, R | BlobStore | EventStore>

export type EpochOutcome =
  | { readonly status: "completed"; readonly lossBefore: number; readonly lossAfter: number; readonly report?: TrainReport }
  | { readonly status: "rolledBack"; readonly reason: string; readonly report?: TrainReport }

/** What the scheduler reads: the epoch, and the plans, nodes and model it plans with. */
const view = (epoch: string) => sideBySide("epoch-scheduler", { epoch: epochProgress(epoch), plans: PlansProjection, nodes: NodesProjection, model: ModelProjection })

/** How fast a node computes, in FLOP/s: its registered speed is forward passes per second of one expert of the default model on one row. */
const flopsPerSecond = (speed: number): number => speed * forwardFlopsPerToken(2 * defaultSpec.dModel * defaultSpec.dFF)

/**
 * The plan for an epoch's first round on these nodes: the exact partition of the model's layers
 * (training FLOPs over each node's speed, plus each boundary's activations and gradients over its
 * link), every stage within its node's memory.
 */
export const planEpoch = (epoch: string, spec: ModelSpec, nodes: ReadonlyArray<Device>) =>
  Effect.gen(function* () {
    const devices = nodes.map((d) => ({ ...d, speed: flopsPerSecond(d.speed) }))
    const found = yield* partition({ layers: trainingLayerLoads(spec), devices, boundaryBytes: boundaryBytesPerToken(spec.dModel, dtypeBytes(spec)) })
    const body = { epoch, round: roundId(0), stages: found.stages.map((s) => ({ node: s.device, start: s.start, end: s.end })), zero1: false, actCkpt: false }
    const plan: Plan = { planId: derivedPlanId(body), ...body }
    return plan
  })

/** Why an epoch already scheduled differs from this order, or undefined. */
const orderMismatch = (recorded: EventData<"EpochScheduled">, asked: EventData<"EpochScheduled">): string | undefined => {
  for (const k of Object.keys(asked) as Array<keyof typeof asked>)
    if (recorded[k] !== asked[k]) return `epoch ${asked.epoch} was scheduled with ${k} ${String(recorded[k])}, not ${String(asked[k])}: resume it as it was scheduled, or start another epoch`
  return undefined
}

/** What others may append to an epoch's stream while it runs: a plan promoted for it. */
const OTHERS_EVENTS: ReadonlySet<string> = new Set(["EpochPlanned", "PlanPromoted"])

/**
 * The scheduler's way of recording on its epoch's stream: each append expects the stream where
 * this scheduler last left it, so a second scheduler running the same epoch is refused at its
 * next write instead of recording rounds twice. A plan promoted for the epoch meanwhile is
 * someone else's right, and is stepped over.
 */
const exclusiveRecorder = (epoch: string) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const stream = Streams.epoch(epoch)
    let seen = (yield* store.read(stream)).length
    const record: EpochRecorder<EpochRefused | InvalidEvent | StoreFailure, never> = (type, data) =>
      Effect.gen(function* () {
        for (;;) {
          const appended = yield* Effect.either(store.append(stream, [newEvent(type, data)], seen === 0 ? "no_stream" : seen - 1))
          if (Either.isRight(appended)) return void (seen = appended.right.revision + 1)
          if (appended.left._tag !== "WrongExpectedRevision") return yield* appended.left
          const since = (yield* store.read(stream)).slice(seen)
          const foreign = since.find((e) => !OTHERS_EVENTS.has(e.type))
          if (foreign !== undefined)
            return yield* new EpochRefused({ message: `epoch ${epoch} is being run by another scheduler: ${foreign.type} at revision ${seen + since.indexOf(foreign)} of its stream is not this one's` })
          seen += since.length
        }
      })
    return record
  })

/** Run the epoch from wherever the log says it stands, to its completion or rollback. */
export const runEpoch = <E, R, E2, R2, E3, R3>(work: EpochWork<E, R, E2, R2, E3, R3>) =>
  Effect.gen(function* () {
    const { order, texts } = work
    const { epoch, rounds, steps } = order
    const fold = Effect.map(foldStream("*", view(epoch)), (r) => r.state)
    const record = yield* exclusiveRecorder(epoch)
    const asked = { ...order, corpus: sha256Hex(texts.corpus), heldOut: sha256Hex(texts.heldOut ?? new Uint8Array()) }
    let s = yield* fold
    if (s.epoch.scheduled === undefined) yield* record("EpochScheduled", asked)
    else {
      const wrong = orderMismatch(s.epoch.scheduled, asked)
      if (wrong !== undefined) return yield* new EpochRefused({ message: wrong })
    }

    let machine = epochState(s.epoch, rounds)
    if (machine.status === "done")
      return s.epoch.completedWith === undefined
        ? ({ status: "rolledBack", reason: machine.context.reason ?? "rolled back" } as EpochOutcome)
        : ({ status: "completed", ...s.epoch.completedWith } as EpochOutcome)
    if (machine.matches("planning")) {
      // A plan promoted before a restart is frozen as it was; otherwise the live nodes are planned on now.
      const pending = machine.context.pending === undefined ? undefined : s.plans.plans.get(machine.context.pending)?.plan
      const live = new Set(work.live())
      const spec = s.model.spec?.spec
      if (spec === undefined) return yield* new EpochRefused({ message: "the ledger holds no model yet: run `blyan init`" })
      const nodes = activeDevices(s.nodes).filter((d) => live.has(d.id))
      if (nodes.length === 0) return yield* new EpochRefused({ message: "no registered node is live to plan the epoch on: start nodes (`blyan node`) on this network" })
      const plan = pending ?? (yield* planEpoch(epoch, spec, nodes))
      yield* promotePlan(plan, validationContext({ layers: trainingLayerLoads(spec), devices: nodes }))
      s = yield* fold
      machine = epochState(s.epoch, rounds)
    }
    if (machine.matches({ training: "running" }))
      yield* record("RoundFailed", {
        epoch,
        round: machine.context.running!,
        reason: "cut off before it completed (the scheduler stopped); it runs again from the last checkpoint"
      })

    // Weights that already became blocks are not trained again: their outcome decides.
    const trained = s.epoch.trained
    if (trained !== undefined) return yield* conclude(record, epoch, rounds, trained.lossBefore, trained.lossAfter)

    const last = s.epoch.completed.at(-1)
    const from: TrainingState | undefined =
      last === undefined ? undefined : yield* Effect.flatMap(Effect.flatMap(BlobStore, (b) => b.get(last.checkpoint)), (bytes) => decodeCheckpoint(s.model.spec!.spec, bytes))
    let round: { readonly index: number; readonly planId: string; readonly step: EpochStep<E | E2, R | R2> } | undefined
    const startRound = (index: number) =>
      Effect.gen(function* () {
        // A round boundary: after the pause, a plan promoted for the epoch since takes over here.
        if (index > 0) yield* Effect.sleep(`${work.intervalMs} millis`)
        const now = yield* fold
        const at = epochState(now.epoch, rounds).context
        const planId = at.pending ?? at.plan!
        const plan = now.plans.plans.get(planId)!.plan
        const step = yield* pipelineRound({ ...plan, round: roundId(index) }, work.round, work.piped(plan.stages), work.alone, work.live, record)
        return { index, planId, step }
      })
    const takeStep: EpochStep<E | E2, R | R2> = (weights, state, batch, config, n) =>
      Effect.gen(function* () {
        const index = Math.floor((n - 1) / steps)
        if (round?.index !== index) round = yield* startRound(index)
        const { planId } = round
        const r = yield* round.step(weights, state, batch, config, n).pipe(
          // A refusal to write is no failure of the round's: the round is someone else's to record.
          Effect.tapError((e) => (e instanceof EpochRefused ? Effect.void : record("RoundFailed", { epoch, round: roundId(index), reason: `step ${n}: ${messageOf(e)}` })))
        )
        if (n % steps === 0) {
          const checkpoint = yield* Effect.flatMap(BlobStore, (b) => b.put(encodeCheckpoint({ step: n, weights: r.weights, state: r.state })))
          yield* record("RoundCompleted", { epoch, round: roundId(index), planId, step: n, loss: r.loss, checkpoint })
        }
        return r
      })
    const report = yield* work.train({ steps: rounds * steps, batch: order.batch, lr: order.lr, seed: order.seed }, takeStep, { from, epoch })
    const outcome = yield* conclude(record, epoch, rounds, report.heldOutLossBefore, report.heldOutLossAfter)
    return { ...outcome, report }
  })

const messageOf = (e: unknown): string => (typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e))

/** Record the evaluation's verdict: completed when held-out loss went down, otherwise rolled back. */
const conclude = <E, R>(record: EpochRecorder<E, R>, epoch: string, rounds: number, lossBefore: number, lossAfter: number) =>
  Effect.gen(function* () {
    if (improvesHeldOut(lossBefore, lossAfter)) {
      yield* record("EpochCompleted", { epoch, rounds, lossBefore, lossAfter })
      return { status: "completed", lossBefore, lossAfter } as EpochOutcome
    }
    const reason = noGainReason(lossBefore, lossAfter)
    yield* record("EpochRolledBack", { epoch, reason })
    return { status: "rolledBack", reason } as EpochOutcome
  })
