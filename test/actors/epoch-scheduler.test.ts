import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Exit, Layer } from "effect"
import { expect, layer } from "@effect/vitest"
import { auditLedger } from "../../actors/auditor.ts"
import { registerContributor } from "../../actors/contributors.ts"
import { runEpoch, type EpochOrder } from "../../actors/epoch-scheduler.ts"
import { initLedger } from "../../actors/genesis.ts"
import { loadModel } from "../../actors/model-ledger.ts"
import type { TransportSettings } from "../../actors/pipeline-transport.ts"
import { pipelineStep } from "../../actors/pipeline-step.ts"
import { serveStageWorkers } from "../../actors/stage-worker.ts"
import { trainOnLedger, type TakeStep } from "../../actors/trainer.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { encodePart } from "../../domain/model/safetensors.ts"
import { moeLayerParams, trainingLayerLoads } from "../../domain/pipeline/cost.ts"
import type { Plan, PlanStage } from "../../domain/pipeline/plan.ts"
import { promotePlan } from "../../actors/planner.ts"
import { validationContext } from "../../domain/pipeline/validate.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { ModelRunner } from "../../domain/ports/model-runner.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"
import { contributorSeed, testLedgerKey, testTrust } from "../support/ledger.ts"
import { logOf } from "../support/log.ts"
import { crashingAfter, freshLedger } from "../support/stores.ts"

const corpus = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/heldout.txt")))
const contributor = keyPairFromSeed(contributorSeed(1))
const transport: TransportSettings = { timeoutMs: 5000, maxRetries: 0, backoffBaseMs: 5, breaker: { threshold: 100, resetMs: 1000 }, chunkBytes: 4096, compression: "none", maxBufferBytes: 1 << 24 }
const order: EpochOrder = { epoch: "e1", rounds: 2, steps: 2, batch: 4, microbatches: 2, lr: 0.02, seed: 5 }
const NODES = ["gpu-a", "gpu-b", "gpu-c"]
/** Each node holds one layer with its gradients and AdamW state, not two: the plan has two stages. */
const nodeMemory = 1.5 * moeLayerParams(tinySpec) * 16

/** A ledger with the tiny model, a known contributor, and three registered nodes serving stage work on a memory bus. */
const network = Effect.gen(function* () {
  const bus = yield* makeMemoryBus()
  const { events, blobs } = yield* freshLedger()
  const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(Bus, bus))
  yield* on(initLedger(tinySpec))
  yield* on(registerContributor(contributor.publicKey, testLedgerKey))
  for (const [i, node] of NODES.entries()) {
    const profile = { node, publicKey: sha256Hex(`key ${node}`), keyHash: sha256Hex(`api ${node}`), device: "cpu", memory: nodeMemory, speed: 100 * (i + 1), bandwidth: 1e9 }
    yield* events.append(Streams.node(node), [newEvent("NodeRegistered", profile)], "any")
  }
  yield* on(serveStageWorkers(NODES, transport))
  return { bus, events, blobs, on }
})

/** The epoch on `store` (the network's, or one that dies as a killed process would); `during` runs before each step. */
const epochOn = (net: Effect.Effect.Success<typeof network>, store: EventStoreApi, asked: EpochOrder = order, during: (step: number) => Effect.Effect<unknown, unknown> = () => Effect.void) =>
  Effect.gen(function* () {
    const runner = yield* ModelRunner
    const piped = (stages: ReadonlyArray<PlanStage>) => (nodes: ReadonlyArray<string>) =>
      ((weights, state, batch, config, step) =>
        Effect.zipRight(
          Effect.orDie(during(step)),
          Effect.scoped(
            pipelineStep({ graphs: runner.graphs(weights.spec), weights, state, batch, config, stages, nodes, microbatches: asked.microbatches, epoch: "e1", round: `s${step}`, transport, deadlineMs: 60_000 })
          )
        )) satisfies TakeStep<unknown, unknown>
    return yield* runEpoch({
      order: asked,
      texts: { corpus, heldOut },
      live: () => NODES,
      piped,
      alone: (w, s, b, c) => runner.trainStep(w, s, b, c),
      round: { maxFailures: 3, backoffMs: 5 },
      intervalMs: 0,
      train: (settings, step, run) => trainOnLedger({ corpus, heldOut }, settings, { seed: contributor.seed }, undefined, step, run)
    }).pipe(Effect.provideService(EventStore, store), Effect.provideService(BlobStore, net.blobs), Effect.provideService(Bus, net.bus))
  })

/** The model's weights as their block payloads, by part. */
const modelBytes = (net: Effect.Effect.Success<typeof network>) =>
  Effect.map(net.on(loadModel), (m) => new Map([...m.weights.parts].map(([name, part]) => [name, sha256Hex(encodePart(part))])))

const epochLog = (store: EventStoreApi) =>
  Effect.map(logOf(store), (log) => log.filter((e) => e.stream === Streams.epoch("e1")).map((e) => ({ type: e.type, data: e.data as Record<string, unknown> })))

// Live: the stage workers wait on the real clock.
layer(Layer.provideMerge(ModelRunnerLive, TestExecutor), { timeout: 300_000, excludeTestServices: true })("the epoch scheduler", (it) => {
  it.scoped("plans the epoch on the registered nodes, freezes the plan, trains its rounds through the pipeline with a checkpoint each, and completes it: the improved weights become blocks naming the epoch", () =>
    Effect.gen(function* () {
      const net = yield* network
      const before = yield* modelBytes(net)
      const outcome = yield* epochOn(net, net.events)
      expect(outcome.status).toBe("completed")
      const log = yield* epochLog(net.events)
      expect(log.map((e) => e.type)).toEqual(["EpochScheduled", "EpochPlanned", "PlanPromoted", "RoundStarted", "RoundCompleted", "RoundStarted", "RoundCompleted", "EpochCompleted"])
      const plan = log[1]!.data.plan as { planId: string; stages: ReadonlyArray<PlanStage> }
      // Every node holds one layer only: two stages, on two of the nodes, covering the model.
      expect(plan.stages.map((s) => [s.start, s.end])).toEqual([[0, 0], [1, 1]])
      for (const s of plan.stages) expect(NODES).toContain(s.node)
      expect(log[4]!.data).toMatchObject({ round: "round-0", planId: plan.planId, step: 2 })
      expect(log[6]!.data).toMatchObject({ round: "round-1", planId: plan.planId, step: 4 })
      const all = yield* logOf(net.events)
      expect(all.filter((e) => e.type === "PlanFrozen").map((e) => e.data)).toEqual([{ planId: plan.planId, epoch: "e1", round: "round-0" }])
      const trained = all.filter((e) => e.type === "ModelTrained").map((e) => e.data as { epoch?: string; heldOutLossBefore: number; heldOutLossAfter: number })
      expect(trained).toHaveLength(1)
      expect(trained[0]!.epoch).toBe("e1")
      expect(log[7]!.data).toEqual({ epoch: "e1", rounds: 2, lossBefore: trained[0]!.heldOutLossBefore, lossAfter: trained[0]!.heldOutLossAfter })
      const after = yield* modelBytes(net)
      expect([...after].filter(([name, h]) => before.get(name) !== h).length).toBeGreaterThan(0)
      // The checkpoints are the log's blobs: audit finds no orphan and the log verifies.
      const audit = yield* net.on(auditLedger(testTrust))
      expect(audit.replay.firstBad).toBeUndefined()
      expect(audit.orphans).toEqual([])
      // Run again: the epoch has ended, nothing more is recorded.
      expect((yield* epochOn(net, net.events)).status).toBe("completed")
      expect((yield* epochLog(net.events)).length).toBe(log.length)
      // Resumed with other settings, it is refused in words and nothing is recorded.
      const other = yield* Effect.either(epochOn(net, net.events, { ...order, steps: 4 }))
      expect(Either.isLeft(other) && (other.left as { message: string }).message).toMatch(/epoch e1 was scheduled with steps 2, not 4/)
    })
  )

  it.scoped("killed at any append and started again, the epoch resumes where the log says it stood (a cut-off round runs again from the last checkpoint) and ends with exactly the weights of an uninterrupted run", () =>
    Effect.gen(function* () {
      const reference = yield* network
      yield* epochOn(reference, reference.events)
      const expected = yield* modelBytes(reference)
      const appends = (yield* epochLog(reference.events)).length
      // Every append the epoch makes, on its own stream and the model's, is a place to be killed at.
      for (let survive = 0; survive <= appends + 2; survive++) {
        const net = yield* network
        const killed = yield* Effect.exit(epochOn(net, crashingAfter(net.events, survive)))
        expect(Exit.isFailure(killed) || survive > appends).toBe(true)
        const outcome = yield* epochOn(net, net.events)
        expect(outcome.status).toBe("completed")
        expect(yield* modelBytes(net)).toEqual(expected)
        const log = yield* epochLog(net.events)
        expect(log.filter((e) => e.type === "EpochCompleted")).toHaveLength(1)
        expect(log.filter((e) => e.type === "RoundCompleted").map((e) => e.data.round)).toEqual(["round-0", "round-1"])
        // A round cut off between its start and its completion is recorded as failed before it runs again.
        const started = log.filter((e) => e.type === "RoundStarted").length
        expect(log.filter((e) => e.type === "RoundFailed")).toHaveLength(started - 2)
      }
    })
  )

  it.scoped("a plan promoted for the epoch while a round runs waits for the round's end, and the next round runs on it", () =>
    Effect.gen(function* () {
      const net = yield* network
      const other: Plan = { planId: "swap-in", epoch: "e1", round: "round-1", stages: [{ node: "gpu-c", start: 0, end: 0 }, { node: "gpu-a", start: 1, end: 1 }], zero1: false, actCkpt: false }
      const context = validationContext({ layers: trainingLayerLoads(tinySpec), devices: NODES.map((id) => ({ id, speed: 1, memory: nodeMemory })) })
      const promoteAt2 = (step: number) => (step === 2 ? net.on(promotePlan(other, context)) : Effect.void)
      yield* epochOn(net, net.events, order, promoteAt2)
      const log = yield* epochLog(net.events)
      const rounds = log.filter((e) => e.type === "RoundStarted" || e.type === "RoundCompleted").map((e) => [e.type, e.data.round, e.data.planId])
      const first = (log[1]!.data.plan as Plan).planId
      expect(rounds).toEqual([
        ["RoundStarted", "round-0", first],
        ["RoundCompleted", "round-0", first],
        ["RoundStarted", "round-1", "swap-in"],
        ["RoundCompleted", "round-1", "swap-in"]
      ])
    })
  )

  it.scoped("two schedulers started at once on one epoch: one runs it, the other is refused at its first write; every round and the verdict are recorded once", () =>
    Effect.gen(function* () {
      const net = yield* network
      const [a, b] = yield* Effect.all([epochOn(net, net.events), epochOn(net, net.events)], { concurrency: 2, mode: "either" })
      const outcomes = [a, b]
      expect(outcomes.filter(Either.isRight).map((o) => o.right.status)).toEqual(["completed"])
      const refused = outcomes.find(Either.isLeft)!.left as { _tag: string; message: string }
      expect(refused._tag).toBe("EpochRefused")
      expect(refused.message).toMatch(/epoch e1 is being run by another scheduler: EpochScheduled at revision 0/)
      const log = yield* epochLog(net.events)
      expect(log.map((e) => e.type)).toEqual(["EpochScheduled", "EpochPlanned", "PlanPromoted", "RoundStarted", "RoundCompleted", "RoundStarted", "RoundCompleted", "EpochCompleted"])
    })
  )
})
