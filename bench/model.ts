/**
 * Model benchmarks (run: `npx tsx bench/model.ts`), on the default spec (blyan-moe-tiny), against
 * the plain TypeScript reference forward (test/domain/model/reference.ts) measured in the same run,
 * written to bench/results/model.json:
 *
 * (a) forward tokens/s on onnxruntime (per-part graphs, top-k dispatch) vs the reference forward;
 * (b) training steps/s (forward, loss, backward through every part, AdamW) on onnxruntime, also as
 *     tokens/s relative to the reference forward alone;
 * (c) greedy generation tokens/s (batch 1, with the key/value cache; `bench/inference.ts` compares it
 *     with recomputing the window for every token).
 */
import { performance } from "node:perf_hooks"
import { machineInfo, writeResults } from "./record.ts"
import { Effect, ManagedRuntime } from "effect"
import { ModelRunnerOnnx } from "../adapters/executor/model-runner.ts"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import { defaultAdamW, initAdamW } from "../domain/model/adamw.ts"
import { sampleBatch, textBytes } from "../domain/model/data.ts"
import type { Device } from "../domain/ports/executor.ts"
import { initWeights } from "../domain/model/init.ts"
import { makePrng } from "../domain/model/prng.ts"
import { defaultSpec, parameterCounts } from "../domain/model/spec.ts"
import { referenceForward } from "../test/domain/model/reference.ts"

const BATCH = Number(process.env.BENCH_BATCH ?? 8)
const SEQ = Number(process.env.BENCH_SEQ ?? defaultSpec.context)
const FORWARD_REPS = Number(process.env.BENCH_FORWARD_REPS ?? 10)
const TRAIN_STEPS = Number(process.env.BENCH_TRAIN_STEPS ?? 10)
const GEN_TOKENS = Number(process.env.BENCH_GEN_TOKENS ?? 32)
const DEVICE = (process.env.BLYAN_DEVICE ?? "cpu") as Device
const REPEATS = 3

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits
const seconds = async (f: () => Promise<unknown> | unknown) => {
  const t0 = performance.now()
  await f()
  return (performance.now() - t0) / 1000
}

const TEXT = textBytes(
  "Every expert is a block on the ledger, and every answer names the blocks that produced it. " +
    "Validators measure a submitted expert on fresh text; the chain keeps only what is better. ".repeat(4)
)

const spec = defaultSpec
const weights = initWeights(spec)
const rng = makePrng(spec.seed)
const batch = sampleBatch(TEXT, BATCH, SEQ, rng)
const tokens = BATCH * SEQ
const rt = ManagedRuntime.make(ModelRunnerOnnx({ device: DEVICE }))

try {
  const runner = await rt.runPromise(ModelRunner)
  const run = <A, E>(eff: Effect.Effect<A, E>) => rt.runPromise(eff)

  // (a) forward
  await run(runner.forward(weights, batch)) // warm-up: sessions are created here
  const fwdRates: number[] = []
  for (let r = 0; r < REPEATS; r++) {
    const s = await seconds(async () => {
      for (let i = 0; i < FORWARD_REPS; i++) await run(runner.forward(weights, batch))
    })
    fwdRates.push((FORWARD_REPS * tokens) / s)
  }
  const ortForward = median(fwdRates)
  const refTimes: number[] = []
  for (let r = 0; r < REPEATS; r++) refTimes.push(tokens / (await seconds(() => referenceForward(weights, batch))))
  const refForward = median(refTimes)
  console.log(`forward    onnxruntime ${round(ortForward)} tokens/s   reference ${round(refForward)} tokens/s   ratio ${round(ortForward / refForward, 2)}`)

  // (b) training
  let w = weights
  let state = initAdamW()
  const losses: number[] = []
  const stepRates: number[] = []
  await run(runner.trainStep(w, state, batch, defaultAdamW)) // warm-up (backward sessions)
  for (let r = 0; r < REPEATS; r++) {
    const s = await seconds(async () => {
      for (let i = 0; i < TRAIN_STEPS; i++) {
        const res = await run(runner.trainStep(w, state, sampleBatch(TEXT, BATCH, SEQ, rng), defaultAdamW))
        w = res.weights
        state = res.state
        losses.push(res.loss)
      }
    })
    stepRates.push(TRAIN_STEPS / s)
  }
  const trainSteps = median(stepRates)
  console.log(
    `training   ${round(trainSteps, 2)} steps/s (${round(trainSteps * tokens)} tokens/s, ${round((trainSteps * tokens) / refForward, 2)}× the reference forward)   loss ${round(losses[0]!, 3)} → ${round(losses.at(-1)!, 3)}`
  )

  // (c) generation
  const prompt = TEXT.subarray(0, 16)
  await run(runner.generate(w, prompt, { maxTokens: 2, temperature: 0, seed: 1 }))
  const genRates: number[] = []
  for (let r = 0; r < REPEATS; r++) genRates.push(GEN_TOKENS / (await seconds(() => run(runner.generate(w, prompt, { maxTokens: GEN_TOKENS, temperature: 0, seed: 1 })))))
  const gen = median(genRates)
  console.log(`generation ${round(gen)} tokens/s (batch 1, greedy)`)

  const result = {
    bench: "model",
    date: new Date().toISOString(),
    machine: machineInfo(),
    device: DEVICE,
    note: "medians of 3 runs; baseline: plain TypeScript float64 reference forward, same batch, same run",
    spec,
    parameters: parameterCounts(spec),
    batch: { batch: BATCH, seq: SEQ, tokens },
    forward: {
      reps: FORWARD_REPS,
      onnxruntimeTokensPerSec: round(ortForward),
      referenceTokensPerSec: round(refForward),
      ratioToReference: round(ortForward / refForward, 2)
    },
    training: {
      steps: TRAIN_STEPS * REPEATS,
      stepsPerSec: round(trainSteps, 3),
      tokensPerSec: round(trainSteps * tokens),
      ratioToReferenceForward: round((trainSteps * tokens) / refForward, 2),
      firstLoss: round(losses[0]!, 4),
      lastLoss: round(losses.at(-1)!, 4)
    },
    generation: { tokens: GEN_TOKENS, tokensPerSec: round(gen, 2) }
  }
  writeResults("model", result)
} finally {
  await rt.dispose()
}
