import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { ensureGenesis } from "../../actors/genesis.ts"
import { appendingToEpoch, pipelineRound } from "../../actors/pipeline-round.ts"
import { pipelineStep } from "../../actors/pipeline-step.ts"
import { serveStageWorkers } from "../../actors/stage-worker.ts"
import type { TransportSettings } from "../../actors/pipeline-transport.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { ownNatsServer } from "../support/nats-server.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { Bus, NoResponders, type BusApi } from "../../domain/ports/bus.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { defaultAdamW, initAdamW, type AdamWConfig, type AdamWState } from "../../domain/model/adamw.ts"
import { sampleBatch, textBytes } from "../../domain/model/data.ts"
import { buildModelGraphs } from "../../domain/model/onnx/graphs.ts"
import { makePrng } from "../../domain/model/prng.ts"
import type { ModelSpec } from "../../domain/model/spec.ts"
import type { ModelWeights } from "../../domain/model/tensor.ts"
import { trainStep, type TrainBatch } from "../../domain/model/train.ts"
import type { Plan } from "../../domain/pipeline/plan.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { TestExecutor64, randomWeights, tinySpec } from "../domain/model/support.ts"
import { logOf } from "../support/log.ts"

const spec: ModelSpec = { ...tinySpec, layers: 3, dModel: 8, dFF: 16, context: 6 }
const graphs = buildModelGraphs(spec, "f64")
const text = textBytes("A round retries a failed stage, then falls back to one node, and records each.")
const lossless: TransportSettings = { timeoutMs: 5000, maxRetries: 0, backoffBaseMs: 5, breaker: { threshold: 100, resetMs: 1000 }, chunkBytes: 4096, compression: "none", maxBufferBytes: 1 << 24 }
const plan: Plan = {
  planId: "p1",
  epoch: "e1",
  round: "r1",
  stages: [
    { node: "n0", start: 0, end: 0 },
    { node: "n1", start: 1, end: 1 },
    { node: "n2", start: 2, end: 2 }
  ],
  zero1: false,
  actCkpt: false
}

/** The bus with stage 1 unreachable for the requests `down` names (counted from 0). */
const stageOneDown = (bus: BusApi, down: (n: number) => boolean): BusApi => {
  let n = 0
  return { ...bus, request: (subject, data, options) => (subject.endsWith(".stage.1.act") && down(n++) ? Effect.fail(NoResponders.of({ subject })) : bus.request(subject, data, options)) }
}

/** Three steps through the round on `bus`, and the same three in one process: the round's events and whether the weights agree. */
const threeSteps = (bus: BusApi, maxFailures: number, spares: ReadonlyArray<string> = [], transport = lossless) =>
  Effect.gen(function* () {
    const events = yield* makeMemoryEventStore()
    yield* ensureGenesis.pipe(Effect.provideService(EventStore, events))
    yield* serveStageWorkers([...new Set([...plan.stages.map((s) => s.node), ...spares])], transport).pipe(Effect.provideService(Bus, bus))
    const piped = (nodes: ReadonlyArray<string>) => (weights: ModelWeights, state: AdamWState, batch: TrainBatch, config: AdamWConfig, step: number) =>
      Effect.scoped(pipelineStep({ graphs, weights, state, batch, config, stages: plan.stages, nodes, microbatches: 2, epoch: plan.epoch, round: `s${step}`, transport, deadlineMs: 60_000 }))
    const step = yield* pipelineRound(plan, { maxFailures, backoffMs: 5 }, piped, (w, s, b, c) => trainStep(graphs, w, s, b, c), () => spares, appendingToEpoch("e1")).pipe(Effect.provideService(EventStore, events))
    let round = { weights: randomWeights(spec, 3, 0.4), state: initAdamW() }
    let alone = { ...round }
    for (let i = 1; i <= 3; i++) {
      const batch = sampleBatch(text, 4, spec.context, makePrng(i))
      round = yield* step(round.weights, round.state, batch, defaultAdamW, i).pipe(Effect.provideService(EventStore, events), Effect.provideService(Bus, bus))
      alone = yield* trainStep(graphs, alone.weights, alone.state, batch, defaultAdamW)
    }
    const log = yield* logOf(events)
    let most = 0
    for (const [name, part] of round.weights.parts)
      for (const [t, tensor] of Object.entries(part.tensors)) tensor.data.forEach((v, i) => (most = Math.max(most, Math.abs(v - alone.weights.parts.get(name)!.tensors[t]!.data[i]!))))
    return { log: log.filter((e) => e.stream === Streams.epoch("e1")).map((e) => ({ type: e.type, data: e.data as Record<string, unknown> })), difference: most }
  })

/** The bus with node `node` gone: nothing sent to its stage worker arrives. */
const nodeDown = (bus: BusApi, node: string): BusApi => ({
  ...bus,
  request: (subject, data, options) => (subject === Subjects.pipelineOrders(node) ? Effect.fail(NoResponders.of({ subject })) : bus.request(subject, data, options))
})

describe("a pipeline round on its epoch's stream", () => {
  it.scopedLive("a node that fails its stage twice has the stage given to a spare node (StageReassigned), and the round goes on there with the single-process weights", () =>
    Effect.gen(function* () {
      const r = yield* threeSteps(nodeDown(yield* makeMemoryBus(), "n1"), 3, ["n0", "n3"])
      expect(r.log.map((e) => e.type)).toEqual(["RoundStarted", "StageFailed", "StageFailed", "StageReassigned"])
      expect(r.log[2]!.data).toMatchObject({ stage: 1, node: "n1", reason: expect.stringMatching(/the work order to node n1 was not delivered/) })
      // n0 already runs a stage: the spare is n3.
      expect(r.log[3]!.data).toEqual({ epoch: "e1", round: "r1", stage: 1, from: "n1", to: "n3" })
      expect(r.difference).toBeLessThan(1e-9)
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("a step whose stage failed is taken again and recorded as StageFailed naming the stage's node; the round's weights are those of the steps taken once", () =>
    Effect.gen(function* () {
      // Stage 1 cannot be reached for its first request only.
      const r = yield* threeSteps(stageOneDown(yield* makeMemoryBus(), (n) => n === 0), 3)
      expect(r.log.map((e) => e.type)).toEqual(["RoundStarted", "StageFailed"])
      expect(r.log[0]!.data).toEqual({ epoch: "e1", round: "r1", planId: "p1" })
      expect(r.log[1]!.data).toMatchObject({ epoch: "e1", round: "r1", stage: 1, node: "n1", reason: expect.stringMatching(/^step 1: stage 1: .*nobody serves/) })
      expect(r.difference).toBeLessThan(1e-9)
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("over nats-server: a stage whose neighbour stops answering trips its breaker towards that node (StageFailed: the circuit is open); the round backs off, the breaker's probe finds the node back and closes it; the later steps pass and the round ends with the single-process weights", () =>
    Effect.gen(function* () {
      // Stage 1's inbox answers nobody for its first three requests; the breaker opens after two failures and half-opens after 300 ms.
      const breaking: TransportSettings = { ...lossless, maxRetries: 3, backoffBaseMs: 20, breaker: { threshold: 2, resetMs: 300 } }
      // A server of its own: the plan's node and stage subjects are nobody else's.
      const server = yield* ownNatsServer()
      const r = yield* threeSteps(stageOneDown(yield* makeNatsBus([server.url]), (n) => n < 3), 20, [], breaking)
      const failed = r.log.slice(1)
      expect(r.log[0]!.type).toBe("RoundStarted")
      expect(failed.length).toBeGreaterThanOrEqual(2)
      for (const e of failed) {
        expect(e.type).toBe("StageFailed")
        expect(e.data).toMatchObject({ stage: 1, node: "n1", reason: expect.stringMatching(/^step 1: stage 1: /) })
      }
      expect(failed.some((e) => /the circuit to n1 is open/.test(String(e.data.reason)))).toBe(true)
      expect(r.difference).toBeLessThan(1e-9)
    }).pipe(Effect.provide(TestExecutor64))
  )

  it.scopedLive("after BLYAN_ROUND_MAX_FAILURES failures the round falls back to a single node for the rest of its steps (FallbackActivated), and still ends with the single-process weights", () =>
    Effect.gen(function* () {
      const r = yield* threeSteps(stageOneDown(yield* makeMemoryBus(), () => true), 2)
      expect(r.log.map((e) => e.type)).toEqual(["RoundStarted", "StageFailed", "StageFailed", "FallbackActivated"])
      expect(r.log[3]!.data.reason).toMatch(/^2 stage failures in this round; the last: stage 1: /)
      expect(r.difference).toBeLessThan(1e-9)
    }).pipe(Effect.provide(TestExecutor64))
  )
})
