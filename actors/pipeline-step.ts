/**
 * One training step through a pipeline of stage workers (`actors/stage-worker.ts`), one stage per
 * named node: each is sent its layers' weights and its microbatches' inputs, and once every stage
 * is listening, told to go; they pass activations forward and gradients back among themselves in
 * 1F1B order and answer with their parts' gradients. Clipping is by the whole step's norm (the
 * stages' sums of squares added) and the AdamW update is applied here, once every stage has
 * answered, so the step is the one a single process would take on the whole batch, and a failed
 * attempt changes nothing.
 */
import { randomBytes } from "node:crypto"
import { Duration, Effect, Either } from "effect"
import { adamwUpdate, gradientSquares, type AdamWConfig, type AdamWState, type Gradients } from "../domain/model/adamw.ts"
import type { ModelGraphs } from "../domain/model/onnx/graphs.ts"
import { microbatches, stageOwns, type StageLayers } from "../domain/model/stage.ts"
import type { ModelWeights } from "../domain/model/tensor.ts"
import type { TrainBatch } from "../domain/model/train.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { decodeAnswer, encodeOrder } from "../domain/pipeline/work.ts"
import { addTransport, type TransportCounts } from "../domain/pipeline/step-report.ts"
import { Bus } from "../domain/ports/bus.ts"
import { makeTensorSender, receiveTensors, type TransportSettings } from "./pipeline-transport.ts"
import { encodeGo, PipelineFault, receiving } from "./stage-worker.ts"

export type PipelineStep = {
  readonly graphs: ModelGraphs
  readonly weights: ModelWeights
  /** The stages' layers, in order, covering every layer once. */
  readonly stages: ReadonlyArray<StageLayers>
  /** The node whose stage worker runs each stage. */
  readonly nodes: ReadonlyArray<string>
  readonly batch: TrainBatch
  readonly microbatches: number
  readonly state: AdamWState
  readonly config: AdamWConfig
  /** Where on the bus: the epoch and round the step belongs to. */
  readonly epoch: string
  readonly round: string
  readonly transport: TransportSettings
  /** How long an attempt may take, from the orders to the last answer. */
  readonly deadlineMs: number
}

/** A stage's parts of the weights: what it reads and updates. */
const partsOf = (graphs: ModelGraphs, weights: ModelWeights, r: StageLayers): ModelWeights => {
  const owns = stageOwns(graphs, r)
  return { spec: weights.spec, parts: new Map([...weights.parts].filter(([name]) => owns(name))) }
}

/**
 * Run one step: the loss over the whole batch, the updated weights and optimiser state, the
 * gradient norm, how long the stages took together and each spent computing, and what the transport met.
 */
export const pipelineStep = (step: PipelineStep) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const p = step.stages.length
    const mbs = yield* microbatches(step.batch, step.microbatches)
    // Each attempt on subjects of its own: nothing of an abandoned attempt reaches this one.
    const attempt = randomBytes(6).toString("hex")
    const round = `${step.round}-${attempt}`
    const fault = (stage: number, message: string) => new PipelineFault({ stage, message: `stage ${stage}: ${message}` })
    const answers = yield* receiveTensors(Subjects.pipelineAnswers(step.epoch, round), receiving(step.transport))
    const sender = yield* makeTensorSender(step.transport)

    const orders = Effect.forEach(
      step.stages,
      (r, s) =>
        sender
          .send(
            Subjects.pipelineOrders(step.nodes[s]!),
            encodeOrder({
              attempt,
              epoch: step.epoch,
              round,
              stage: s,
              stages: step.stages,
              nodes: step.nodes,
              spec: step.weights.spec,
              precision: step.graphs.precision,
              deadlineMs: step.deadlineMs,
              microbatches: mbs.map((mb) => ({
                batch: mb.batch,
                seq: mb.seq,
                ...(s === 0 ? { tokens: Array.from(mb.tokens) } : {}),
                ...(s === p - 1 ? { targets: Array.from(mb.targets), weights: Array.from(mb.weights) } : {})
              })),
              weights: partsOf(step.graphs, step.weights, r)
            })
          )
          .pipe(Effect.mapError((e) => fault(s, `the work order to node ${step.nodes[s]} was not delivered: ${e.message}`))),
      { concurrency: "unbounded", discard: true }
    )

    const go = (s: number) => bus.request(Subjects.pipelineStage(step.epoch, round, s, "go"), encodeGo(attempt), { timeoutMs: step.transport.timeoutMs })
    const ready = new Set<number>()
    const done = new Map<number, { readonly grads: Gradients; readonly loss: number; readonly busyMs: number; readonly transport: TransportCounts }>()
    const collect = Effect.gen(function* () {
      while (done.size < p) {
        const a = decodeAnswer((yield* answers.take).tensor)
        if (Either.isLeft(a) || a.right.attempt !== attempt || a.right.stage >= p) continue
        const answer = a.right
        if (answer.kind === "failed") return yield* fault(answer.at, answer.message)
        if (answer.kind === "done") done.set(answer.stage, answer)
        else if (!ready.has(answer.stage)) {
          ready.add(answer.stage)
          if (ready.size === p)
            yield* Effect.forEach(
              step.stages,
              (_, s) => go(s).pipe(Effect.mapError((e) => fault(s, `node ${step.nodes[s]} did not take the word to go: ${e.message}`))),
              { concurrency: "unbounded", discard: true }
            )
        }
      }
    })
    // Once every stage is under way, one that nobody serves any more has gone (its process died):
    // found at the next look, instead of at the deadline, when its neighbours are only waiting on it.
    const watch = Effect.gen(function* () {
      for (;;) {
        yield* Effect.sleep(step.transport.timeoutMs)
        if (ready.size < p) continue
        for (const s of step.stages.keys()) {
          if (done.has(s)) continue
          const probe = yield* Effect.either(go(s))
          if (Either.isLeft(probe) && probe.left._tag === "NoResponders") return yield* fault(s, `node ${step.nodes[s]} stopped answering: ${probe.left.message}`)
        }
      }
    })
    const [wall] = yield* Effect.timed(
      Effect.zip(orders, Effect.raceFirst(collect, watch), { concurrent: true }).pipe(
        Effect.timeoutFail({
          duration: step.deadlineMs,
          onTimeout: () => {
            // The first stage still owing an answer is the likeliest to have gone.
            const late = Math.max(0, step.stages.findIndex((_, s) => (ready.size < p ? !ready.has(s) : !done.has(s))))
            return fault(late, `node ${step.nodes[late]} did not answer within ${step.deadlineMs} ms`)
          }
        })
      )
    )
    const results = step.stages.map((_, s) => done.get(s)!)
    const norm = Math.sqrt(results.reduce((a, r) => a + gradientSquares(r.grads), 0))
    let weights = step.weights
    let state = step.state
    results.forEach((r, s) => {
      const u = adamwUpdate(weights, r.grads, state, step.config, stageOwns(step.graphs, step.stages[s]!), norm)
      weights = u.weights
      state = u.state
    })
    return {
      loss: results.reduce((a, r) => a + r.loss, 0),
      weights,
      state,
      gradNorm: norm,
      wallMs: Duration.toMillis(wall),
      busyMs: results.map((r) => r.busyMs),
      // The orders sent from here, and each stage's sends.
      transport: results.reduce((a, r) => addTransport(a, r.transport), sender.stats())
    }
  })
