import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { pipelineStep } from "../../actors/pipeline-step.ts"
import { serveStageWork } from "../../actors/stage-worker.ts"
import type { TransportSettings } from "../../actors/pipeline-transport.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { defaultAdamW, initAdamW } from "../../domain/model/adamw.ts"
import { sampleBatch, textBytes } from "../../domain/model/data.ts"
import { buildModelGraphs } from "../../domain/model/onnx/graphs.ts"
import { makePrng } from "../../domain/model/prng.ts"
import type { ModelSpec } from "../../domain/model/spec.ts"
import type { ModelWeights } from "../../domain/model/tensor.ts"
import { trainStep } from "../../domain/model/train.ts"
import { TestExecutor64, randomWeights, tinySpec } from "../domain/model/support.ts"
import { testNatsUrl } from "../support/jetstream-fixtures.ts"
import { faulty, firstSendFaults } from "../support/faulty-bus.ts"

const spec: ModelSpec = { ...tinySpec, layers: 3, dModel: 8, dFF: 16, context: 6 }
const graphs = buildModelGraphs(spec, "f64")
const text = textBytes("A pipeline trains a model across nodes: activations forward, gradients back, one microbatch at a time.")
const transport: TransportSettings = {
  timeoutMs: 500,
  maxRetries: 3,
  backoffBaseMs: 5,
  breaker: { threshold: 5, resetMs: 1000 },
  chunkBytes: 256,
  compression: "none",
  maxBufferBytes: 1 << 24
}
const stages = [
  { start: 0, end: 0 },
  { start: 1, end: 1 },
  { start: 2, end: 2 }
]

/** The largest difference between two sets of weights, over every tensor of every part. */
const maxDifference = (a: ModelWeights, b: ModelWeights) => {
  let most = 0
  for (const [name, part] of a.parts)
    for (const [t, tensor] of Object.entries(part.tensors)) {
      const other = b.parts.get(name)!.tensors[t]!.data
      for (let i = 0; i < tensor.data.length; i++) most = Math.max(most, Math.abs(tensor.data[i]! - other[i]!))
    }
  return most
}

/** Three steps through the pipeline on `bus` and three in one process, on the same batches: their losses and weights. */
const bothWays = (bus: BusApi, round: string) =>
  Effect.gen(function* () {
    // A stage worker per stage, on the same bus: as node processes would be.
    const nodes = stages.map((_, s) => `${round}-n${s}`)
    for (const node of nodes) yield* serveStageWork(node, transport).pipe(Effect.provideService(Bus, bus))
    let piped = { weights: randomWeights(spec, 3, 0.4), state: initAdamW() }
    let alone = { weights: piped.weights, state: initAdamW() }
    const losses: Array<[number, number]> = []
    for (let i = 0; i < 3; i++) {
      const batch = sampleBatch(text, 8, spec.context, makePrng(i))
      const p = yield* pipelineStep({ graphs, ...piped, stages, nodes, batch, microbatches: 4, config: defaultAdamW, epoch: "e1", round: `${round}-${i}`, transport, deadlineMs: 60_000 }).pipe(Effect.provideService(Bus, bus))
      const a = yield* trainStep(graphs, alone.weights, alone.state, batch, defaultAdamW)
      losses.push([p.loss, a.loss])
      piped = p
      alone = a
    }
    return { losses, difference: maxDifference(piped.weights, alone.weights), moved: maxDifference(piped.weights, randomWeights(spec, 3, 0.4)) }
  })

describe("a training step through a pipeline of three stages (1F1B, four microbatches)", () => {
  it.scopedLive("gives the loss and the weights of the same steps in one process (f64 graphs: within 1e-9), on the memory bus and over the real nats-server", () =>
    Effect.gen(function* () {
      for (const [bus, name] of [[yield* makeMemoryBus(), "memory"], [yield* makeNatsBus([testNatsUrl]), `nats-${process.pid}`]] as const) {
        const r = yield* bothWays(bus, name)
        for (const [p, a] of r.losses) expect(Math.abs(p - a)).toBeLessThan(1e-9)
        expect(r.difference).toBeLessThan(1e-9)
        // The steps did move the weights: the comparison is of something.
        expect(r.moved).toBeGreaterThan(1e-3)
      }
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("with chunks dropped, acks lost, chunks duplicated and corrupted on the way over the real nats-server: the same weights, nothing lost or applied twice", () =>
    Effect.gen(function* () {
      const nats = yield* makeNatsBus([testNatsUrl])
      // Every fifth chunk meets a fault on its first send, whichever stage sends it.
      const wire = faulty(nats, firstSendFaults(5))
      const r = yield* bothWays(wire, `faulty-${process.pid}`)
      expect(Object.keys(wire.faults).sort()).toEqual(["corrupt", "drop", "duplicate", "lose-ack"])
      for (const [p, a] of r.losses) expect(Math.abs(p - a)).toBeLessThan(1e-9)
      expect(r.difference).toBeLessThan(1e-9)
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("a stage's node that dies while its neighbour only waits on it is found gone before the step's deadline, and named", () =>
    Effect.gen(function* () {
      const memory = yield* makeMemoryBus()
      const two = [
        { start: 0, end: 1 },
        { start: 2, end: 2 }
      ]
      const doomed = yield* Scope.make()
      // w1's process dies as stage 1 sends its gradient back: stage 0 waits for it and has nothing more to send.
      const bus: BusApi = {
        ...memory,
        request: (subject, data, options) =>
          subject.endsWith(".stage.0.grad") ? Effect.zipRight(Effect.forkDaemon(Scope.close(doomed, Exit.void)), Effect.never) : memory.request(subject, data, options)
      }
      yield* serveStageWork("w0", transport).pipe(Effect.provideService(Bus, bus))
      yield* serveStageWork("w1", transport).pipe(Effect.provideService(Bus, bus), Scope.extend(doomed))
      const batch = sampleBatch(text, 2, spec.context, makePrng(1))
      const weights = randomWeights(spec, 3, 0.4)
      const step = { graphs, weights, state: initAdamW(), stages: two, nodes: ["w0", "w1"], batch, microbatches: 1, config: defaultAdamW, epoch: "e1", round: "dies", transport, deadlineMs: 60_000 }
      const failed = yield* Effect.flip(pipelineStep(step).pipe(Effect.provideService(Bus, bus)))
      expect(failed).toMatchObject({ _tag: "PipelineFault", stage: 1, message: expect.stringMatching(/^stage 1: node w1 stopped answering/) })
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("a stage whose inbox holds one microbatch's activations at a time stalls its sender into backpressure: the step waits, and is the single-process step", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      // 24 rows of 6 positions of width 8 in f64: 9,216 bytes a microbatch; stage 1's inbox takes 10,000.
      const batch = sampleBatch(text, 96, spec.context, makePrng(2))
      yield* serveStageWork("b0", transport).pipe(Effect.provideService(Bus, bus))
      yield* serveStageWork("b1", { ...transport, maxBufferBytes: 10_000 }).pipe(Effect.provideService(Bus, bus))
      yield* serveStageWork("b2", transport).pipe(Effect.provideService(Bus, bus))
      const weights = randomWeights(spec, 3, 0.4)
      const step = { graphs, weights, state: initAdamW(), stages, nodes: ["b0", "b1", "b2"], batch, microbatches: 4, config: defaultAdamW, epoch: "e1", round: "stall", transport, deadlineMs: 60_000 }
      // Stage 1 starts late: stage 0's first activations fill its inbox meanwhile (late enough for a loaded machine; a full inbox is waited on for 5 s).
      const late: BusApi = {
        ...bus,
        request: (subject, data, options) => (subject.endsWith(".stage.1.go") ? Effect.zipRight(Effect.sleep("1500 millis"), bus.request(subject, data, options)) : bus.request(subject, data, options))
      }
      const piped = yield* pipelineStep(step).pipe(Effect.provideService(Bus, late))
      const alone = yield* trainStep(graphs, weights, initAdamW(), batch, defaultAdamW)
      expect(piped.transport.backpressureWaits).toBeGreaterThan(0)
      expect(Math.abs(piped.loss - alone.loss)).toBeLessThan(1e-9)
      expect(maxDifference(piped.weights, alone.weights)).toBeLessThan(1e-9)
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("an order a stage cannot run (its layer's weights missing) is answered as that stage's failure, naming why, and changes nothing", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const nodes = ["m0", "m1", "m2"]
      for (const node of nodes) yield* serveStageWork(node, transport).pipe(Effect.provideService(Bus, bus))
      const whole = randomWeights(spec, 3, 0.4)
      const weights = { ...whole, parts: new Map([...whole.parts].filter(([name]) => name !== "layer1.attention")) }
      const step = { graphs, weights, state: initAdamW(), stages, nodes, batch: sampleBatch(text, 8, spec.context, makePrng(3)), microbatches: 4, config: defaultAdamW, epoch: "e1", round: "broken", transport, deadlineMs: 60_000 }
      const failed = yield* Effect.flip(pipelineStep(step).pipe(Effect.provideService(Bus, bus)))
      expect(failed).toMatchObject({ _tag: "PipelineFault", stage: 1, message: expect.stringMatching(/^stage 1: the work order could not be run: /) })
    }).pipe(Effect.provide(TestExecutor64))
  )
})
