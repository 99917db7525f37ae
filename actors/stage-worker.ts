/**
 * A node's stage worker: it takes work orders from its subject, and for each runs its stage of a
 * training step: its layers' forward and backward in 1F1B order (`domain/pipeline/schedule.ts`),
 * activations from the stage before and gradients from the stage after over the pipeline
 * transport. It holds nothing between steps: the order brings the weights, the answer takes the
 * gradients back, so a stage can move to another node between any two attempts.
 *
 * An attempt: open the stage's inboxes, tell the coordinator it is ready, wait for its word to
 * go (so no stage sends before every stage listens), compute, answer with the gradients or with
 * the stage at fault. A newer order stops the attempts still running; each gives up at its deadline.
 */
import { Deferred, Duration, Effect, Either, Fiber, Schema, type Scope } from "effect"
import { addGradients } from "../domain/model/adamw.ts"
import { makeGraphsCache, type ModelGraphs } from "../domain/model/onnx/graphs.ts"
import { stageBackward, stageForward, type StageSaved } from "../domain/model/stage.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { stageOps } from "../domain/pipeline/schedule.ts"
import { decodeOrder, decodeTensor, encodeAnswer, encodeTensor, type StageAnswer, type StageOrder } from "../domain/pipeline/work.ts"
import { transportSince } from "../domain/pipeline/step-report.ts"
import { Bus } from "../domain/ports/bus.ts"
import type { Executor } from "../domain/ports/executor.ts"
import { makeTensorSender, receiveTensors, type TensorSender, type TransportSettings } from "./pipeline-transport.ts"

/** A stage's attempt went wrong: `stage` is the one at fault (this one, or the neighbour it could not reach). */
export class PipelineFault extends Schema.TaggedError<PipelineFault>()("PipelineFault", { stage: Schema.Int, message: Schema.String }) {}

/** How a receiver of the pipeline holds tensors: the transport's buffer, and partial transfers forgotten after ten deadlines. */
export const receiving = (t: TransportSettings) => ({ maxBufferBytes: t.maxBufferBytes, staleMs: 10 * t.timeoutMs })

/** The coordinator's word to a stage that every stage is listening. */
export const encodeGo = (attempt: string) => new TextEncoder().encode(attempt)

/** Run one order's attempt to its answer. */
const runOrder = (order: StageOrder, graphs: ModelGraphs, sender: TensorSender, transport: TransportSettings): Effect.Effect<StageAnswer, never, Bus | Executor | Scope.Scope> => {
  const { attempt, epoch, round, stage: s, stages } = order
  const p = stages.length
  const subject = (stage: number, kind: "act" | "grad" | "go") => Subjects.pipelineStage(epoch, round, stage, kind)
  const answers = Subjects.pipelineAnswers(epoch, round)
  return Effect.gen(function* () {
    const bus = yield* Bus
    const sentBefore = sender.stats()
    const acts = s > 0 ? yield* receiveTensors(subject(s, "act"), receiving(transport)) : undefined
    const grads = s < p - 1 ? yield* receiveTensors(subject(s, "grad"), receiving(transport)) : undefined
    const go = yield* Deferred.make<void>()
    yield* bus.serve(subject(s, "go"), (m) => Effect.as(new TextDecoder().decode(m.data) === attempt ? Deferred.succeed(go, undefined) : Effect.void, new Uint8Array(0)))
    yield* sender.send(answers, encodeAnswer({ kind: "ready", attempt, stage: s }))
    yield* Deferred.await(go)

    const r = stages[s]!
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
    // The next tensor of this attempt (one left over from an abandoned attempt is dropped), which must be microbatch `mb`.
    const take = (inbox: NonNullable<typeof acts>, mb: number) =>
      Effect.gen(function* () {
        for (;;) {
          const t = decodeTensor((yield* inbox.take).tensor)
          if (Either.isLeft(t)) return yield* new PipelineFault({ stage: s, message: t.left.message })
          if (t.right.attempt !== attempt) continue
          if (t.right.mb !== mb) return yield* new PipelineFault({ stage: s, message: `expected microbatch ${mb}, got ${t.right.mb}` })
          return t.right.x
        }
      })
    for (const op of stageOps(s, p, order.microbatches.length)) {
      const mb = order.microbatches[op.mb]!
      const dims = { batch: mb.batch, seq: mb.seq }
      if (op.op === "F") {
        const input = acts === undefined ? { tokens: mb.tokens ?? [] } : { x: yield* take(acts, op.mb) }
        const out = yield* timed(stageForward(graphs, order.weights, r, dims, input))
        saved.set(op.mb, out)
        if (s < p - 1) yield* sender.send(subject(s + 1, "act"), encodeTensor(attempt, op.mb, out.out), order.nodes[s + 1])
      } else {
        const from = grads === undefined ? { targets: mb.targets ?? [], lossWeights: mb.weights ?? [] } : { dOut: yield* take(grads, op.mb) }
        const b = yield* timed(stageBackward(graphs, order.weights, r, dims, saved.get(op.mb)!, from))
        saved.delete(op.mb)
        addGradients(sums, b.grads)
        loss += b.loss ?? 0
        if (b.dIn !== undefined) yield* sender.send(subject(s - 1, "grad"), encodeTensor(attempt, op.mb, b.dIn), order.nodes[s - 1])
      }
    }
    return { kind: "done", attempt, stage: s, loss, busyMs, transport: transportSince(sentBefore, sender.stats()), grads: sums } satisfies StageAnswer
  }).pipe(
    Effect.timeoutFail({ duration: order.deadlineMs, onTimeout: () => new PipelineFault({ stage: s, message: `the attempt did not finish within ${order.deadlineMs} ms` }) }),
    // Whatever failed is laid at a stage's door: a peer that could not be reached at the peer's, anything else at this one's.
    Effect.catchAll((e): Effect.Effect<StageAnswer> => {
      const at =
        e._tag === "PipelineFault"
          ? e.stage
          : e._tag === "PeerUnreachable" || e._tag === "CircuitOpen" || e._tag === "BackpressureTimeout"
            ? e.peer === subject(s + 1, "act")
              ? s + 1
              : e.peer === answers
                ? s
                : s - 1
            : s
      return Effect.succeed({ kind: "failed", attempt, stage: s, at, message: e.message })
    }),
    // An order the model code cannot run (weights that are not the stage's, say) is this stage's failure too, told, not a dead worker.
    Effect.catchAllDefect((d) => Effect.succeed<StageAnswer>({ kind: "failed", attempt, stage: s, at: s, message: `the work order could not be run: ${d instanceof Error ? d.message : String(d)}` }))
  )
}

/**
 * Serve `node`'s stage work until the scope closes: each order in a fiber of its own, its answer
 * sent to the coordinator (an answer that cannot be delivered is dropped: the coordinator's
 * deadline decides). Orders that do not decode are dropped, having nobody to answer.
 */
export const serveStageWork = (node: string, transport: TransportSettings) =>
  Effect.gen(function* () {
    const orders = yield* receiveTensors(Subjects.pipelineOrders(node), receiving(transport))
    const sender = yield* makeTensorSender(transport)
    const graphs = makeGraphsCache()
    const running = new Map<string, { readonly attempt: string; readonly fiber: Fiber.RuntimeFiber<void> }>()
    const loop = Effect.gen(function* () {
      const order = decodeOrder((yield* orders.take).tensor)
      if (Either.isLeft(order)) return
      const { attempt, epoch, round, stage } = order.right
      // The coordinator starts an attempt only once the one before is over: whatever still runs is abandoned.
      for (const r of running.values()) if (r.attempt !== attempt) yield* Fiber.interrupt(r.fiber)
      const key = `${attempt}/${stage}`
      const answer = runOrder(order.right, graphs(order.right.spec, order.right.precision), sender, transport).pipe(
        Effect.flatMap((a) => Effect.ignore(sender.send(Subjects.pipelineAnswers(epoch, round), encodeAnswer(a)))),
        // The inboxes stay open until the next attempt or the deadline: a neighbour whose last
        // acknowledgement was lost sends that chunk again after this stage is done.
        Effect.zipRight(Effect.sleep(order.right.deadlineMs)),
        Effect.scoped,
        Effect.ensuring(Effect.sync(() => running.delete(key)))
      )
      running.set(key, { attempt, fiber: yield* Effect.forkScoped(answer) })
    })
    yield* Effect.forkScoped(Effect.forever(loop))
  })

/** Stage workers for `nodes` in this process, on its bus: a pipeline with no node processes. */
export const serveStageWorkers = (nodes: ReadonlyArray<string>, transport: TransportSettings) =>
  Effect.forEach(nodes, (node) => serveStageWork(node, transport), { discard: true })
