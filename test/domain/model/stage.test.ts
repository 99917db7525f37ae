import fc from "fast-check"
import { Effect } from "effect"
import { expect, layer } from "@effect/vitest"
import { addGradients, type Gradients } from "../../../domain/model/adamw.ts"
import { textBytes, sampleBatch } from "../../../domain/model/data.ts"
import { buildModelGraphs } from "../../../domain/model/onnx/graphs.ts"
import { makePrng } from "../../../domain/model/prng.ts"
import type { ModelSpec } from "../../../domain/model/spec.ts"
import { microbatches, stageBackward, stageForward, stageOwns, type StageLayers, type StageSaved } from "../../../domain/model/stage.ts"
import type { Executor } from "../../../domain/ports/executor.ts"
import { lossAndGradients } from "../../../domain/model/train.ts"
import { randomWeights, TestExecutor64, tinySpec } from "./support.ts"

const spec: ModelSpec = { ...tinySpec, layers: 3, dModel: 8, dFF: 16, context: 6 }
const graphs = buildModelGraphs(spec, "f64")
const weights = randomWeights(spec, 5, 0.5)
const text = textBytes("Pipelines pass activations forward and gradients back, one microbatch at a time.")

/** Every cut of the layers into contiguous stages. */
const stagings = fc
  .subarray([1, 2], { minLength: 0 })
  .map((cuts): ReadonlyArray<StageLayers> => {
    const starts = [0, ...cuts]
    return starts.map((start, i) => ({ start, end: (starts[i + 1] ?? spec.layers) - 1 }))
  })

layer(TestExecutor64)("a pipeline stage's forward and backward", (it) => {
  it.effect("chained over any cut into stages and any split into microbatches, give the loss and every gradient of the whole model on the whole batch (property)", () =>
    Effect.gen(function* () {
      const cases = fc.sample(fc.tuple(stagings, fc.constantFrom(1, 2, 4), fc.nat()), { numRuns: 8, seed: 7 })
      for (const [stages, m, seed] of cases) {
        const batch = sampleBatch(text, 4, spec.context, makePrng(seed))
        const whole = yield* lossAndGradients(graphs, weights, batch)
        const sums = new Map<string, Record<string, Float64Array>>()
        let loss = 0
        for (const mb of yield* microbatches(batch, m)) {
          const dims = { batch: mb.batch, seq: mb.seq }
          const saved: StageSaved[] = []
          let input: { tokens: ArrayLike<number> } | { x: Float32Array | Float64Array } = { tokens: mb.tokens }
          for (const r of stages) {
            const s: StageSaved = yield* stageForward(graphs, weights, r, dims, input)
            saved.push(s)
            input = { x: s.out }
          }
          let from: { targets: ArrayLike<number>; lossWeights: ArrayLike<number> } | { dOut: Float32Array | Float64Array } = { targets: mb.targets, lossWeights: mb.weights }
          for (let i = stages.length - 1; i >= 0; i--) {
            const b: { grads: Gradients; loss?: number; dIn?: Float32Array | Float64Array } = yield* stageBackward(graphs, weights, stages[i]!, dims, saved[i]!, from)
            // Each stage's gradients are of its own parts only.
            for (const part of b.grads.keys()) expect(stageOwns(graphs, stages[i]!)(part)).toBe(true)
            addGradients(sums, b.grads)
            loss += b.loss ?? 0
            if (b.dIn !== undefined) from = { dOut: b.dIn }
          }
        }
        expect(loss).toBeCloseTo(whole.loss, 10)
        expect([...sums.keys()].sort()).toEqual([...whole.grads.keys()].sort())
        for (const [part, tensors] of whole.grads)
          for (const [name, g] of Object.entries(tensors)) {
            const got = sums.get(part)![name]!
            for (let i = 0; i < g.length; i++) expect(Math.abs(got[i]! - g[i]!), `${part}/${name}[${i}]`).toBeLessThan(1e-10)
          }
      }
    })
  )

  it.effect("refuses input of the wrong kind or size for its place, and a batch that does not split evenly", () =>
    Effect.gen(function* () {
      const dims = { batch: 1, seq: 4 }
      const refusals: ReadonlyArray<Effect.Effect<unknown, { readonly message: string }, Executor>> = [
        stageForward(graphs, weights, { start: 1, end: 2 }, dims, { tokens: [1, 2, 3, 4] }),
        stageForward(graphs, weights, { start: 0, end: 0 }, dims, { x: new Float64Array(32) }),
        stageForward(graphs, weights, { start: 1, end: 2 }, dims, { x: new Float64Array(31) }),
        microbatches({ batch: 3, seq: 4, tokens: new Array(12).fill(1), targets: new Array(12).fill(1) }, 2)
      ]
      for (const r of refusals) expect((yield* Effect.flip(r)).message).toMatch(/^invalid stage input: /)
    })
  )
})
