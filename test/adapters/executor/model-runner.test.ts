import { Effect } from "effect"
import { expect, layer } from "@effect/vitest"
import { ModelRunnerOnnx } from "../../../adapters/executor/model-runner.ts"
import { ModelRunner } from "../../../domain/ports/model-runner.ts"
import { defaultAdamW, initAdamW } from "../../../domain/model/adamw.ts"
import { Executor } from "../../../domain/ports/executor.ts"
import { initWeights } from "../../../domain/model/init.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"

const spec = { ...defaultSpec, context: 8, dModel: 16, heads: 2, layers: 2, experts: 4, topK: 2, dFF: 32 }
// One runner (and its executor) for the suite: the tests below share its session cache.
layer(ModelRunnerOnnx({ device: "cpu", intraOpThreads: 1 }))("model runner", (it) => {
  it.effect("builds graphs once per model shape and reuses sessions across models of that shape", () =>
    Effect.gen(function* () {
      const runner = yield* ModelRunner
      const ex = yield* Executor
      const a = initWeights(spec)
      const b = initWeights({ ...spec, seed: 99, name: "other", layers: 3 })
      const fa = yield* runner.forward(a, { batch: 1, seq: 4, tokens: [1, 2, 3, 4] })
      const loadsAfterA = (yield* ex.stats).loads
      const fb = yield* runner.forward(b, { batch: 2, seq: 3, tokens: [1, 2, 3, 4, 5, 6] })
      const loadsAfterB = (yield* ex.stats).loads
      expect(fa.logits.length).toBe(4 * 256)
      expect(fb.routing.layers).toBe(3)
      expect(loadsAfterA).toBe(5) // embedding, attention, router, expert, head
      expect(loadsAfterB).toBe(5)
      expect(runner.graphs(a.spec).expert === runner.graphs(b.spec).expert).toBe(true)
    })
  )

  it.effect("trains and generates through the service", () =>
    Effect.gen(function* () {
      const runner = yield* ModelRunner
      const w = initWeights(spec)
      const batch = { batch: 1, seq: 4, tokens: [104, 101, 108, 108], targets: [101, 108, 108, 111] }
      const step = yield* runner.trainStep(w, initAdamW(), batch, defaultAdamW)
      const after = yield* runner.evaluateLoss(step.weights, batch)
      const gen = yield* runner.generate(step.weights, new TextEncoder().encode("hell"), { maxTokens: 2, temperature: 0, seed: 1 })
      expect(after).toBeLessThan(step.loss)
      expect(gen.tokens.length).toBe(2)
    })
  )
})
