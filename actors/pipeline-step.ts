/**
 * One training step through a pipeline: the batch in microbatches, each stage running its own
 * layers' forward and backward in 1F1B order (`domain/pipeline/schedule.ts`), activations passed
 * forward and gradients back over the bus with the pipeline transport. Every stage sums its
 * microbatches' gradients; clipping is by the whole step's norm (the stages' sums of squares
 * added), and each stage's AdamW update touches only its own parts, so the step is the one a
 * single process would take on the whole batch.
 */
import { Duration, Effect, Either, Schema } from "effect"
import { Subjects } from "../domain/network/subjects.ts"
import { frame, unframe } from "../domain/network/frames.ts"
import { adamwUpdate, addGradients, gradientSquares, type AdamWConfig, type AdamWState } from "../domain/model/adamw.ts"
import type { FloatArray } from "../domain/model/forward.ts"
import type { ModelGraphs } from "../domain/model/onnx/graphs.ts"
import { microbatches, stageBackward, stageForward, stageOwns, type StageLayers, type StageSaved } from "../domain/model/stage.ts"
import type { ModelWeights } from "../domain/model/tensor.ts"
import type { TrainBatch } from "../domain/model/train.ts"
import { stageOps } from "../domain/pipeline/schedule.ts"
import { makeTensorSender, receiveTensors, type TransportSettings } from "./pipeline-transport.ts"

/** A stage received what it did not expect: another microbatch than its schedule's next, or bytes that are no tensor. */
export class PipelineFault extends Schema.TaggedError<PipelineFault>()("PipelineFault", { stage: Schema.Int, message: Schema.String }) {}

export type PipelineStep = {
  readonly graphs: ModelGraphs
  readonly weights: ModelWeights
  /** The stages' layers, in order, covering every layer once. */
  readonly stages: ReadonlyArray<StageLayers>
  readonly batch: TrainBatch
  readonly microbatches: number
  readonly state: AdamWState
  readonly config: AdamWConfig
  /** Where on the bus: the epoch and round the step belongs to. */
  readonly epoch: string
  readonly round: string
  readonly transport: TransportSettings
}

/** A microbatch's activations or gradient: its index and precision in the header, its floats as the body. */
const encodeTensor = (mb: number, x: FloatArray) => frame({ mb, dtype: x instanceof Float64Array ? "f64" : "f32" }, new Uint8Array(x.buffer, x.byteOffset, x.byteLength))

const decodeTensor = (stage: number, bytes: Uint8Array, expected: number): Either.Either<FloatArray, PipelineFault> => {
  const fault = (message: string) => Either.left(new PipelineFault({ stage, message: `stage ${stage}: ${message}` }))
  const f = unframe(bytes)
  if (Either.isLeft(f)) return fault(f.left.message)
  const h = f.right.header as { mb?: unknown; dtype?: unknown } | null
  if (h?.mb !== expected) return fault(`expected microbatch ${expected}, got ${JSON.stringify(h?.mb)}`)
  const body = Uint8Array.from(f.right.body)
  if (h.dtype === "f64" && body.length % 8 === 0) return Either.right(new Float64Array(body.buffer))
  if (h.dtype === "f32" && body.length % 4 === 0) return Either.right(new Float32Array(body.buffer))
  return fault(`microbatch ${expected}'s tensor is not ${String(h.dtype)} floats`)
}

/**
 * Run one step: the loss over the whole batch, the updated weights and optimiser state, the
 * gradient norm, and how long the stages took together and each spent computing.
 */
export const pipelineStep = (step: PipelineStep) =>
  Effect.gen(function* () {
    const p = step.stages.length
    const mbs = yield* microbatches(step.batch, step.microbatches)
    const subject = (s: number, kind: "act" | "grad") => Subjects.pipelineStage(step.epoch, step.round, s, kind)
    const receiving = { maxBufferBytes: step.transport.maxBufferBytes, staleMs: 10 * step.transport.timeoutMs }
    // Every stage listens before any sends.
    const inboxes = yield* Effect.forEach(step.stages, (_, s) =>
      Effect.all({
        acts: s > 0 ? receiveTensors(subject(s, "act"), receiving) : Effect.succeed(undefined),
        grads: s < p - 1 ? receiveTensors(subject(s, "grad"), receiving) : Effect.succeed(undefined)
      })
    )
    const runStage = (s: number) =>
      Effect.gen(function* () {
        const r = step.stages[s]!
        const { acts, grads } = inboxes[s]!
        const sender = yield* makeTensorSender(step.transport)
        const saved = new Map<number, StageSaved>()
        const sums = new Map<string, Record<string, Float64Array>>()
        let loss = 0
        // Time spent computing, as against waiting for a neighbour or the wire: the stage's occupancy.
        let busyMs = 0
        const timed = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
          Effect.map(Effect.timed(eff), ([d, a]) => {
            busyMs += Duration.toMillis(d)
            return a
          })
        const take = (inbox: NonNullable<typeof acts>, mb: number) => Effect.flatMap(inbox.take, (t) => decodeTensor(s, t.tensor, mb))
        for (const op of stageOps(s, p, mbs.length)) {
          const mb = mbs[op.mb]!
          const dims = { batch: mb.batch, seq: mb.seq }
          if (op.op === "F") {
            const input = acts === undefined ? { tokens: mb.tokens } : { x: yield* take(acts, op.mb) }
            const out = yield* timed(stageForward(step.graphs, step.weights, r, dims, input))
            saved.set(op.mb, out)
            if (s < p - 1) yield* sender.send(subject(s + 1, "act"), encodeTensor(op.mb, out.out))
          } else {
            const from = grads === undefined ? { targets: mb.targets, lossWeights: mb.weights } : { dOut: yield* take(grads, op.mb) }
            const b = yield* timed(stageBackward(step.graphs, step.weights, r, dims, saved.get(op.mb)!, from))
            saved.delete(op.mb)
            addGradients(sums, b.grads)
            loss += b.loss ?? 0
            if (b.dIn !== undefined) yield* sender.send(subject(s - 1, "grad"), encodeTensor(op.mb, b.dIn))
          }
        }
        return { sums, loss, busyMs }
      }).pipe(
        // Whatever failed is laid at a stage's door: a peer that could not be reached at the peer's, anything else at this one's.
        Effect.mapError((e) => {
          if (e._tag === "PipelineFault") return e
          const at = e._tag === "PeerUnreachable" || e._tag === "CircuitOpen" || e._tag === "BackpressureTimeout" ? (e.peer === subject(s + 1, "act") ? s + 1 : s - 1) : s
          return new PipelineFault({ stage: at, message: `stage ${at}: ${e.message}` })
        })
      )
    const [wall, results] = yield* Effect.timed(Effect.forEach(step.stages, (_, s) => runStage(s), { concurrency: "unbounded" }))
    const norm = Math.sqrt(results.reduce((a, r) => a + gradientSquares(r.sums), 0))
    let weights = step.weights
    let state = step.state
    results.forEach((r, s) => {
      const u = adamwUpdate(weights, r.sums, state, step.config, stageOwns(step.graphs, step.stages[s]!), norm)
      weights = u.weights
      state = u.state
    })
    return { loss: results.reduce((a, r) => a + r.loss, 0), weights, state, gradNorm: norm, wallMs: Duration.toMillis(wall), busyMs: results.map((r) => r.busyMs) }
  })
