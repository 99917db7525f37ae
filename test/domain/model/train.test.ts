import { Effect, Either } from "effect"
import { expect, layer } from "@effect/vitest"
import { defaultAdamW, initAdamW } from "../../../domain/model/adamw.ts"
import { sampleBatch, sequentialBatches, textBytes } from "../../../domain/model/data.ts"
import { forward } from "../../../domain/model/forward.ts"
import { initWeights } from "../../../domain/model/init.ts"
import { buildModelGraphs } from "../../../domain/model/onnx/graphs.ts"
import { makePrng } from "../../../domain/model/prng.ts"
import type { ModelSpec } from "../../../domain/model/spec.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"
import type { ModelWeights } from "../../../domain/model/tensor.ts"
import type { TrainBatch } from "../../../domain/model/train.ts"
import { evaluateLoss, lossAndGradients, trainStep } from "../../../domain/model/train.ts"
import { randomWeights, TestExecutor, TestExecutor64, tinySpec } from "./support.ts"
import { referenceForward, referenceLoss } from "./reference.ts"

const withValue = (w: ModelWeights, part: string, tensor: string, index: number, value: number): ModelWeights => {
  const p = w.parts.get(part)!
  const t = p.tensors[tensor]!
  const data = Float32Array.from(t.data)
  data[index] = value
  const parts = new Map(w.parts)
  parts.set(part, { name: part, tensors: { ...p.tensors, [tensor]: { ...t, data } } })
  return { spec: w.spec, parts }
}

layer(TestExecutor64)("whole-model gradients (every part, through the routing) match central differences", (it) => {
  const spec: ModelSpec = { ...tinySpec, dModel: 8, dFF: 16, context: 6 }
  const graphs = buildModelGraphs(spec, "f64")
  const weights = randomWeights(spec, 21, 0.5)
  const batch: TrainBatch = { batch: 2, seq: 6, tokens: [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33], targets: [101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33, 10] }

  it.effect("for embedding, attention, router, experts and head tensors", () =>
    Effect.gen(function* () {
      const { loss, grads, routing } = yield* lossAndGradients(graphs, weights, batch)
      // The graphs' loss is the reference model's mean cross-entropy.
      expect(loss).toBeCloseTo(referenceLoss(referenceForward(weights, batch).logits, batch.targets), 9)
      const usedExpert = `layer1.expert${routing.experts[routing.tokens * routing.topK]!}`
      const probes: Array<[string, string, number]> = [
        ["embedding", "tok", 72 * spec.dModel + 3],
        ["embedding", "tok", 108 * spec.dModel + 5],
        ["embedding", "pos", 2 * spec.dModel + 1],
        ["layer0.attention", "wq", 9],
        ["layer0.attention", "wv", 20],
        ["layer1.attention", "wo", 33],
        ["layer1.attention", "ln.weight", 4],
        ["layer0.router", "w", 5],
        ["layer1.router", "w", 17],
        ["layer1.router", "ln.bias", 2],
        ["layer0.router", "ln.weight", 6],
        [usedExpert, "w1", 7],
        [usedExpert, "b1", 3],
        [usedExpert, "w2", 40],
        [usedExpert, "b2", 1],
        ["head", "w", 3 * 256 + 108],
        ["head", "ln.bias", 0]
      ]
      const h = 2 ** -12
      let checked = 0
      for (const [part, tensor, i] of probes) {
        const w0 = weights.parts.get(part)!.tensors[tensor]!.data[i]!
        // ± h rounded to f32 (the weights' storage); dividing by the actual step keeps it exact.
        const up = Math.fround(w0 + h)
        const down = Math.fround(w0 - h)
        const plus = yield* Effect.zip(evaluateLoss(graphs, withValue(weights, part, tensor, i, up), batch), forward(graphs, withValue(weights, part, tensor, i, up), batch))
        const minus = yield* Effect.zip(evaluateLoss(graphs, withValue(weights, part, tensor, i, down), batch), forward(graphs, withValue(weights, part, tensor, i, down), batch))
        // Top-k selection is piecewise constant: skip a probe whose step flips a routing decision.
        const same = (r: typeof routing) => r.experts.every((e, k) => e === routing.experts[k])
        if (!same(plus[1].routing) || !same(minus[1].routing)) continue
        const numeric = (plus[0] - minus[0]) / (up - down)
        const analytic = grads.get(part)![tensor]![i]!
        expect(Math.abs(analytic - numeric), `${part}/${tensor}[${i}]: analytic ${analytic}, numeric ${numeric}`).toBeLessThanOrEqual(1e-7 + 1e-4 * Math.abs(numeric))
        checked++
      }
      expect(checked).toBeGreaterThanOrEqual(probes.length - 2)
    })
  )

  it.effect("the router gets a non-zero gradient (through the gate weights), and unused experts get none", () =>
    Effect.gen(function* () {
      const { grads, routing } = yield* lossAndGradients(graphs, weights, batch)
      for (let l = 0; l < spec.layers; l++) {
        const g = grads.get(`layer${l}.router`)!.w!
        expect(Array.from(g).some((x) => Math.abs(x) > 1e-8)).toBe(true)
        const used = new Set(Array.from(routing.experts.subarray(l * routing.tokens * routing.topK, (l + 1) * routing.tokens * routing.topK)))
        for (let e = 0; e < spec.experts; e++) expect(grads.has(`layer${l}.expert${e}`), `layer${l}.expert${e}`).toBe(used.has(e))
      }
    })
  )
})

// About 900 bytes of text in one style: the first part trains, the last part is held out.
const CORPUS = [
  "The ledger keeps every block of weights in order, and every block names the blocks it depends on.",
  "A router reads each token and sends it to the two experts that fit it best.",
  "Every expert is a small network, and every expert lives in a block on the chain.",
  "When a node answers a question, it reports which experts answered and at which block hash.",
  "Anyone may train an expert and submit it; validators measure it on fresh text they choose.",
  "If the new expert is better by a margin, the block is appended and the contributor is rewarded.",
  "The chain can be replayed from the genesis covenant, and every weight can be checked again.",
  "The router and the experts learn together, and the ledger remembers every step they take.",
  "Each block carries its parent, its spec and its weights, so the history is never lost.",
  "A validator reads the block, runs the experts on new text, and votes on what it sees."
].join(" ")

layer(TestExecutor)("training", (it) => {
  it.effect("a short run lowers the loss on held-out text", () =>
    Effect.gen(function* () {
      const spec: ModelSpec = { ...defaultSpec, name: "blyan-moe-train-test", context: 32, dModel: 32, heads: 2, layers: 2, experts: 4, topK: 2, dFF: 64, seed: 3 }
      const graphs = buildModelGraphs(spec)
      const bytes = textBytes(CORPUS)
      const split = Math.floor(bytes.length * 0.8)
      const train = bytes.subarray(0, split)
      const heldOut = sequentialBatches(bytes.subarray(split), 8, 32)
      const heldOutLoss = (w: ModelWeights) =>
        Effect.map(
          Effect.forEach(heldOut, (b) => evaluateLoss(graphs, w, b)),
          (ls) => ls.reduce((a, l, i) => a + l * heldOut[i]!.batch, 0) / heldOut.reduce((a, b) => a + b.batch, 0)
        )
      let w = initWeights(spec)
      let state = initAdamW()
      const before = yield* heldOutLoss(w)
      const rng = makePrng(spec.seed)
      const losses: number[] = []
      for (let step = 0; step < 40; step++) {
        const r = yield* trainStep(graphs, w, state, sampleBatch(train, 8, 32, rng), { ...defaultAdamW, lr: 1e-2 })
        w = r.weights
        state = r.state
        losses.push(r.loss)
      }
      const after = yield* heldOutLoss(w)
      expect(before).toBeGreaterThan(5) // ≈ ln 256 at genesis
      expect(losses.every(Number.isFinite)).toBe(true)
      expect(after).toBeLessThan(before - 1.5)
    })
  )

  it.effect("trains only the parts it is told to (e.g. one contributed expert)", () =>
    Effect.gen(function* () {
      const graphs = buildModelGraphs(tinySpec)
      const w = randomWeights(tinySpec, 2)
      const batch = sampleBatch(textBytes(CORPUS), 4, 8, makePrng(1))
      const { routing } = yield* forward(graphs, w, batch)
      const target = `layer0.expert${routing.experts[0]!}`
      const r = yield* trainStep(graphs, w, initAdamW(), batch, defaultAdamW, { trainable: (p) => p === target })
      for (const [name, part] of w.parts) {
        const after = r.weights.parts.get(name)!
        if (name === target) expect(after.tensors.w1!.data).not.toEqual(part.tensors.w1!.data)
        else expect(after).toBe(part)
      }
    })
  )

  it.effect("refuses targets out of range with a typed error", () =>
    Effect.gen(function* () {
      const graphs = buildModelGraphs(tinySpec)
      const r = yield* Effect.either(lossAndGradients(graphs, initWeights(tinySpec), { batch: 1, seq: 2, tokens: [1, 2], targets: [3, 300] }))
      expect(Either.isLeft(r) && r.left._tag).toBe("InvalidModelInput")
    })
  )
})
