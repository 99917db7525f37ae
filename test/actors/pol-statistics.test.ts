import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { describe, expect, layer } from "@effect/vitest"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { evaluateCandidate, trainPart } from "../../actors/pol-evaluation.ts"
import { ModelRunner } from "../../domain/ports/model-runner.ts"
import { defaultAdamW, initAdamW } from "../../domain/model/adamw.ts"
import { sampleBatch } from "../../domain/model/data.ts"
import { initWeights } from "../../domain/model/init.ts"
import { makePrng } from "../../domain/model/prng.ts"
import type { Part } from "../../domain/model/tensor.ts"
import { candidateProblem, defaultCheckSettings } from "../../domain/pol/checks.ts"
import { defaultPoLSettings, evaluationSeed, shortfall } from "../../domain/pol/evaluation.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"

const corpus = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/heldout.txt")))
const genesis = initWeights(tinySpec)
// The decision is the same for any part; the head is where one part alone can gain 2% on a trained model.
const target = "head"
const TRIALS = 200

/** `from` + `alpha` (`to` − `from`), tensor by tensor. */
const towards = (from: Part, to: Part, alpha: number): Part => ({
  name: from.name,
  tensors: Object.fromEntries(Object.entries(from.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((v, i) => v + alpha * (to.tensors[n]!.data[i]! - v)) }]))
})

/** `p` plus Gaussian noise of relative size `scale`: of the RMS of all the part's values. */
const noisy = (p: Part, scale: number, seed: number): Part => {
  const rng = makePrng(seed)
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next())
  const all = Object.values(p.tensors).flatMap((t) => [...t.data])
  const rms = Math.sqrt(all.reduce((s, v) => s + v * v, 0) / all.length)
  return { name: p.name, tensors: Object.fromEntries(Object.entries(p.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((v) => v + scale * rms * gauss()) }])) }
}

const passes = (candidate: Part, trial: number) =>
  Effect.map(evaluateCandidate(base, candidate, heldOut, evaluationSeed(`round-${trial}`, "candidate", "head"), defaultPoLSettings), (f) => shortfall(f, defaultPoLSettings) === undefined)

const acceptedOf = (candidates: (trial: number) => Part) =>
  Effect.reduce(Array.from({ length: TRIALS }, (_, i) => i), 0, (n, trial) => Effect.map(passes(candidates(trial), trial), (ok) => n + (ok ? 1 : 0)))

/**
 * The model the rounds start from: genesis weights trained a while, as a ledger's model is, so that
 * noise on a part is no gain (on untrained weights a random change is often a real one).
 */
let base = genesis
let basePart = genesis.parts.get(target)!

layer(Layer.provide(ModelRunnerLive, TestExecutor))((it) => {
  it.effect("the base: genesis trained 50 steps", () =>
    Effect.gen(function* () {
      const runner = yield* ModelRunner
      const rng = makePrng(3)
      let state = initAdamW()
      for (let step = 0; step < 50; step++) {
        const r = yield* runner.trainStep(base, state, sampleBatch(corpus, 8, tinySpec.context, rng), { ...defaultAdamW, lr: 1e-2 })
        base = r.weights
        state = r.state
      }
      basePart = base.parts.get(target)!
      expect(basePart).not.toBe(genesis.parts.get(target))
    }),
    { timeout: 300_000 }
  )

  describe("Proof of Learning's statistics, on the real model (onnxruntime) and the shipped held-out text", () => {
    it.effect(`over ${TRIALS} null trials (the base plus noise, no real gain) at most 1% is accepted`, () =>
      Effect.gen(function* () {
        // Noise from well below to well above the scale of a training run's change; a draw that
        // truly helps (on 32 other batches) is not a null trial and is drawn again.
        const wide = { ...defaultPoLSettings, batches: 32 }
        const nulls: Part[] = []
        for (let draw = 0; nulls.length < TRIALS; draw++) {
          const candidate = noisy(basePart, 0.002 * 1.03 ** nulls.length, 1000 + draw)
          if ((yield* evaluateCandidate(base, candidate, heldOut, 5, wide)).improvement <= 0) nulls.push(candidate)
        }
        const accepted = yield* acceptedOf((trial) => nulls[trial]!)
        expect(accepted).toBeLessThanOrEqual(TRIALS / 100)
      }),
      { timeout: 300_000 }
    )

    it.effect(`a genuine improvement of at least 2% is accepted in at least 95% of ${TRIALS} trials`, () =>
      Effect.gen(function* () {
        const trained = yield* trainPart(base, target, corpus, { steps: 100, batch: 8, lr: 1e-2, seed: 1 })
        // The smallest step towards the trained part whose true gain (measured on many batches) is 2%.
        const wide = { ...defaultPoLSettings, batches: 128 }
        let alpha = 0
        let gain = 0
        while (gain < 0.02 && alpha < 1) {
          alpha += 0.05
          gain = (yield* evaluateCandidate(base, towards(basePart, trained, alpha), heldOut, 7, wide)).improvement
        }
        expect(gain).toBeGreaterThanOrEqual(0.02)
        expect(gain).toBeLessThan(0.03)
        const candidate = towards(basePart, trained, alpha)
        expect(candidateProblem(tinySpec, basePart, candidate, [{ block: "base", part: basePart }])).toBeUndefined()
        const accepted = yield* acceptedOf(() => candidate)
        expect(accepted).toBeGreaterThanOrEqual(0.95 * TRIALS)
      }),
      { timeout: 300_000 }
    )

    it.effect(`a re-upload of an existing block, exact or perturbed below the noise floor, is never accepted (${TRIALS} trials)`, () =>
      Effect.gen(function* () {
        const trained = yield* trainPart(base, target, corpus, { steps: 20, batch: 8, lr: 1e-2, seed: 2 })
        // The trained block is on the ledger already: the base, then it.
        const earlier = [
          { block: "genesis", part: basePart },
          { block: "trained", part: trained }
        ]
        let accepted = 0
        for (let trial = 0; trial < TRIALS; trial++) {
          const original = trial % 2 === 0 ? basePart : trained
          const copy = trial % 4 < 2 ? original : noisy(original, defaultCheckSettings.copyDistance * (trial / TRIALS) * 0.9, trial)
          const problem = candidateProblem(tinySpec, trained, copy, earlier)
          if (problem === undefined) accepted++
          else expect(problem.reason).toBe("copy")
        }
        expect(accepted).toBe(0)
      })
    )
  })
})
