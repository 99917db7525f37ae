import { Data, Effect } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { newEvent } from "../domain/ledger/events.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { ModelRunner } from "../adapters/executor/model-runner.ts"
import { initAdamW, defaultAdamW } from "../domain/model/adamw.ts"
import { sampleBatch, sequentialBatches } from "../domain/model/data.ts"
import { makePrng } from "../domain/model/prng.ts"
import type { ModelWeights } from "../domain/model/tensor.ts"
import { appendParts, loadModel } from "./model-ledger.ts"

export type TrainSettings = {
  readonly steps: number
  readonly batch: number
  readonly lr: number
  readonly seed: number
  /** Window length; the model's context when absent. */
  readonly seq?: number
}

export class TrainingRefused extends Data.TaggedError("TrainingRefused")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export type TrainReport = {
  readonly steps: number
  readonly trainLossBefore: number
  readonly trainLossAfter: number
  readonly heldOutLossBefore: number
  readonly heldOutLossAfter: number
  readonly appended: ReadonlyArray<{ readonly name: string; readonly block: string; readonly parent: string }>
}

/**
 * Train the current model on `corpus`, measure it on `heldOut` before and after, and append the
 * improved parts as blocks that each depend on the block they improve. Nothing is appended when the
 * held-out loss did not go down: only improvements join the ledger.
 */
export const trainOnLedger = (
  corpus: Uint8Array,
  heldOut: Uint8Array,
  settings: TrainSettings,
  contributorSeed: string,
  onStep: (step: number, loss: number) => void = () => {}
) =>
  Effect.gen(function* () {
    const runner = yield* ModelRunner
    const store = yield* EventStore
    const model = yield* loadModel
    const seq = settings.seq ?? model.weights.spec.context
    if (seq < 1 || seq > model.weights.spec.context) return yield* new TrainingRefused({ reason: `window ${seq} must be within 1..${model.weights.spec.context}` })
    for (const [what, bytes] of [["corpus", corpus], ["held-out text", heldOut]] as const)
      if (bytes.length < seq + 1) return yield* new TrainingRefused({ reason: `the ${what} has ${bytes.length} bytes; at least ${seq + 1} are needed` })

    const held = sequentialBatches(heldOut, settings.batch, seq)
    const trainProbe = sequentialBatches(corpus, settings.batch, seq).slice(0, held.length)
    const meanLoss = (w: ModelWeights, batches: typeof held) =>
      Effect.map(Effect.forEach(batches, (b) => runner.evaluateLoss(w, b)), (ls) => ls.reduce((a, b) => a + b, 0) / ls.length)

    const heldOutLossBefore = yield* meanLoss(model.weights, held)
    const trainLossBefore = yield* meanLoss(model.weights, trainProbe)
    const rng = makePrng(settings.seed)
    const config = { ...defaultAdamW, lr: settings.lr }
    let weights = model.weights
    let state = initAdamW()
    for (let step = 1; step <= settings.steps; step++) {
      const r = yield* runner.trainStep(weights, state, sampleBatch(corpus, settings.batch, seq, rng), config)
      weights = r.weights
      state = r.state
      onStep(step, r.loss)
    }
    const heldOutLossAfter = yield* meanLoss(weights, held)
    const trainLossAfter = yield* meanLoss(weights, trainProbe)
    const losses = { trainLossBefore, trainLossAfter, heldOutLossBefore, heldOutLossAfter }
    if (!(heldOutLossAfter < heldOutLossBefore)) return { steps: settings.steps, ...losses, appended: [] } satisfies TrainReport

    const parts = [...weights.parts.values()]
    const parentOf = (name: string) => model.blocks.get(name)!
    const reason = `local training, ${settings.steps} steps: held-out loss ${heldOutLossBefore.toFixed(4)} -> ${heldOutLossAfter.toFixed(4)}`
    const blocks = yield* appendParts(parts, (n) => [parentOf(n)], contributorSeed, parentOf, reason)
    yield* store.append(
      Streams.chainA,
      [newEvent("ModelTrained", { steps: settings.steps, corpus: sha256Hex(corpus), ...losses, blocks: blocks.map((b) => b.hash) })],
      "any"
    )
    return { steps: settings.steps, ...losses, appended: blocks.map((b) => ({ name: b.name, block: b.hash, parent: parentOf(b.name) })) } satisfies TrainReport
  })
