import { Effect, Either, Schema } from "effect"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import { initAdamW, defaultAdamW, type AdamWConfig, type AdamWState } from "../domain/model/adamw.ts"
import type { TrainBatch, TrainStepResult } from "../domain/model/train.ts"
import { sampleBatch, sequentialBatches } from "../domain/model/data.ts"
import { makePrng } from "../domain/model/prng.ts"
import type { ModelWeights } from "../domain/model/tensor.ts"
import type { TrainingState } from "../domain/model/training-state.ts"
import { completeExpertUpdates, loadModel, signParts } from "./model-ledger.ts"
import { handleCommand } from "./command.ts"
import { decideRecordTraining } from "../domain/projections/model-deciders.ts"
import { requireWriter } from "../domain/projections/contributors.ts"
import { keyPairFromSeed } from "../domain/ledger/signing.ts"
import { BlockWritersView, requireKnownWriter } from "./contributors.ts"


export type TrainSettings = {
  readonly steps: number
  readonly batch: number
  readonly lr: number
  readonly seed: number
  /** Window length; the model's context when absent. */
  readonly seq?: number
}

/** The settings or texts cannot train this model; nothing is recorded. */
export class TrainingRefused extends Schema.TaggedError<TrainingRefused>()("TrainingRefused", { message: Schema.String }) {}

export type TrainReport = {
  readonly steps: number
  readonly trainLossBefore: number
  readonly trainLossAfter: number
  readonly heldOutLossBefore: number
  readonly heldOutLossAfter: number
  readonly appended: ReadonlyArray<{ readonly name: string; readonly block: string; readonly parent: string }>
}

/**
 * The training and held-out texts, each long enough for one window of `seq` bytes and its target.
 * Without a held-out text, the corpus's last tenth is kept for it.
 */
export const splitTexts = (texts: { readonly corpus: Uint8Array; readonly heldOut?: Uint8Array }, seq: number) =>
  Effect.gen(function* () {
    const need = seq + 1
    if (texts.heldOut === undefined) {
      const n = texts.corpus.length
      if (n < 10 * need)
        return yield* new TrainingRefused({ message: `the corpus has ${n} bytes: too few to keep its last tenth as held-out text (at least ${10 * need} are needed, or pass --held-out)` })
      const cut = Math.floor(n * 0.9)
      return { corpus: texts.corpus.subarray(0, cut), heldOut: texts.corpus.subarray(cut) }
    }
    for (const [what, bytes] of [["corpus", texts.corpus], ["held-out text", texts.heldOut]] as const)
      if (bytes.length < need) return yield* new TrainingRefused({ message: `the ${what} has ${bytes.length} bytes; at least ${need} are needed` })
    return { corpus: texts.corpus, heldOut: texts.heldOut }
  })

/** One optimiser step on a batch (the `step`-th of the run). */
export type TakeStep<E, R> = (weights: ModelWeights, state: AdamWState, batch: TrainBatch, config: AdamWConfig, step: number) => Effect.Effect<TrainStepResult, E, R>

/** A run that is part of a pipeline epoch: where it resumes from, and the epoch its result names. */
export interface TrainingRun {
  /** The state after the run's first `from.step` steps, taken before a restart. */
  readonly from?: TrainingState
  readonly epoch?: string
}

/**
 * Train the current model on `corpus`, measure it on `heldOut` before and after, and append the
 * improved parts as blocks that each depend on the block they improve. Nothing is appended when the
 * held-out loss did not go down: only improvements join the ledger.
 */
export const trainOnLedger = <E = never, R = never, E2 = never, R2 = never>(
  texts: { readonly corpus: Uint8Array; readonly heldOut?: Uint8Array },
  settings: TrainSettings,
  signer: {
    readonly seed: string
    /** Registers the key with the ledger, run only when there are blocks to record; without it the key must be known already. */
    readonly register?: Effect.Effect<unknown, E, R>
  },
  onStep: (step: number, loss: number) => void = () => {},
  /** How one optimiser step is taken: in this process by default, or through a pipeline. */
  takeStep?: TakeStep<E2, R2>,
  run: TrainingRun = {}
) =>
  Effect.gen(function* () {
    const runner = yield* ModelRunner
    const contributorSeed = signer.seed
    const contributor = keyPairFromSeed(contributorSeed).publicKey
    // Before the work: blocks from a key the ledger does not know, and cannot be told of, would be refused.
    if (signer.register === undefined) yield* requireKnownWriter(contributor)
    // First finish what an earlier run cut off by a crash committed but did not complete.
    yield* completeExpertUpdates
    const model = yield* loadModel
    const seq = settings.seq ?? model.weights.spec.context
    if (seq < 1 || seq > model.weights.spec.context) return yield* new TrainingRefused({ message: `window ${seq} must be within 1..${model.weights.spec.context}` })
    const { corpus, heldOut } = yield* splitTexts(texts, seq)

    const held = sequentialBatches(heldOut, settings.batch, seq)
    const trainProbe = sequentialBatches(corpus, settings.batch, seq).slice(0, held.length)
    const meanLoss = (w: ModelWeights, batches: typeof held) =>
      Effect.map(Effect.forEach(batches, (b) => runner.evaluateLoss(w, b)), (ls) => ls.reduce((a, b) => a + b, 0) / ls.length)

    const heldOutLossBefore = yield* meanLoss(model.weights, held)
    const trainLossBefore = yield* meanLoss(model.weights, trainProbe)
    const rng = makePrng(settings.seed)
    const config = { ...defaultAdamW, lr: settings.lr }
    let weights = run.from?.weights ?? model.weights
    let state = run.from?.state ?? initAdamW()
    const resumed = run.from?.step ?? 0
    // A resumed run draws the batches its first steps drew, so every later step sees what it would have.
    for (let step = 1; step <= resumed; step++) sampleBatch(corpus, settings.batch, seq, rng)
    for (let step = resumed + 1; step <= settings.steps; step++) {
      const batch = sampleBatch(corpus, settings.batch, seq, rng)
      const r = takeStep === undefined ? yield* runner.trainStep(weights, state, batch, config) : yield* takeStep(weights, state, batch, config, step)
      weights = r.weights
      state = r.state
      onStep(step, r.loss)
    }
    const heldOutLossAfter = yield* meanLoss(weights, held)
    const trainLossAfter = yield* meanLoss(weights, trainProbe)
    const losses = { trainLossBefore, trainLossAfter, heldOutLossBefore, heldOutLossAfter }
    if (!(heldOutLossAfter < heldOutLossBefore)) return { steps: settings.steps, ...losses, appended: [] } satisfies TrainReport

    if (signer.register !== undefined) yield* signer.register
    const parentOf = (name: string) => model.blocks.get(name)!
    const blocks = yield* signParts([...weights.parts.values()], (n) => [parentOf(n)], contributorSeed)
    const outcome = { steps: settings.steps, corpus: sha256Hex(corpus), heldOut: sha256Hex(heldOut), ...losses, ...(run.epoch === undefined ? {} : { epoch: run.epoch }) }
    // One atomic chain-B append; a model that moved since it was loaded makes the result stale.
    yield* handleCommand({
      stream: Streams.chainB,
      projection: BlockWritersView,
      reads: "log",
      decide: (s) => Either.flatMap(requireWriter(s.contributors, contributor), () => decideRecordTraining(s.model, blocks, outcome))
    })
    yield* completeExpertUpdates
    return { steps: settings.steps, ...losses, appended: blocks.map((b) => ({ name: b.name, block: b.hash, parent: parentOf(b.name) })) } satisfies TrainReport
  })
