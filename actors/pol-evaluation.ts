/**
 * The model work of Proof of Learning: a validator's paired evaluation of a candidate part against
 * the model it would replace a part of, signed as its verdict; and training one part alone (what
 * `improve` submits).
 */
import { Effect } from "effect"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import { defaultAdamW, initAdamW } from "../domain/model/adamw.ts"
import { sampleBatch } from "../domain/model/data.ts"
import { makePrng } from "../domain/model/prng.ts"
import { replacePart, type ModelWeights, type Part } from "../domain/model/tensor.ts"
import { figuresOf, shortfall, type PoLSettings } from "../domain/pol/evaluation.ts"
import { signVerdict } from "../domain/pol/rounds.ts"
import type { KeyPair } from "../domain/ledger/signing.ts"

/** Rows per evaluation batch: 12 paired batches of 4 cost about two training steps of 8 rows. */
export const EVALUATION_ROWS = 4

/**
 * The figures of `candidate` (a part) in place of its part of `base`: both evaluated on the same
 * `settings.batches` batches of `heldOut`, drawn with `seed`.
 */
export const evaluateCandidate = (base: ModelWeights, candidate: Part, heldOut: Uint8Array, seed: number, settings: PoLSettings) =>
  Effect.gen(function* () {
    const runner = yield* ModelRunner
    const rng = makePrng(seed)
    const withCandidate = replacePart(base, candidate)
    const baseline: number[] = []
    const candidateLosses: number[] = []
    for (let i = 0; i < settings.batches; i++) {
      const batch = sampleBatch(heldOut, EVALUATION_ROWS, base.spec.context, rng)
      baseline.push(yield* runner.evaluateLoss(base, batch))
      candidateLosses.push(yield* runner.evaluateLoss(withCandidate, batch))
    }
    return figuresOf(baseline, candidateLosses)
  })

/** `steps` optimiser steps on `corpus` that change part `name` alone; the rest of `weights` stays as it is. */
export const trainPart = (weights: ModelWeights, name: string, corpus: Uint8Array, settings: { readonly steps: number; readonly batch: number; readonly lr: number; readonly seed: number }) =>
  Effect.gen(function* () {
    const runner = yield* ModelRunner
    const rng = makePrng(settings.seed)
    const config = { ...defaultAdamW, lr: settings.lr }
    let current = weights
    let state = initAdamW()
    for (let step = 0; step < settings.steps; step++) {
      const r = yield* runner.trainStep(current, state, sampleBatch(corpus, settings.batch, weights.spec.context, rng), config)
      // Every other part is put back: the step's change to this part is all that is kept.
      current = replacePart(weights, r.weights.parts.get(name)!)
      state = r.state
    }
    return current.parts.get(name)!
  })

/**
 * A validator's signed verdict on `a.candidate` against `a.base`: its figures on `heldOut`, with
 * the pass they imply under `settings`. `named`: the held-out text's hash, when the round leaves
 * each validator to name its own.
 */
export const signedVerdict = (
  key: KeyPair,
  a: { readonly round: string; readonly contribution: string; readonly seed: number; readonly base: ModelWeights; readonly candidate: Part },
  heldOut: Uint8Array,
  settings: PoLSettings,
  named: string | undefined
) =>
  Effect.map(evaluateCandidate(a.base, a.candidate, heldOut, a.seed, settings), (figures) =>
    signVerdict(
      { round: a.round, contribution: a.contribution, validator: key.publicKey, seed: a.seed, ...figures, passes: shortfall(figures, settings) === undefined, ...(named === undefined ? {} : { heldOut: named }) },
      key.seed
    )
  )
