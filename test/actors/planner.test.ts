import { Effect, Layer } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import type { Plan } from "../../domain/pipeline/plan.ts"
import { ensureGenesis } from "../../actors/genesis.ts"
import { promotePlan, resolveCluster } from "../../actors/planner.ts"
import { validationContext } from "../../domain/pipeline/validate.ts"
import { foldStream } from "../../actors/command.ts"
import { PlansProjection } from "../../domain/projections/plans.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { blyanMoeLayerCosts, trainingLayerLoads } from "../../domain/pipeline/cost.ts"
import { replay } from "../../domain/ledger/audit.ts"
import { logOf } from "../support/log.ts"

const cluster = {
  layers: Array.from({ length: 4 }, () => ({ cost: 1, memory: 10 })),
  devices: [
    { id: "n1", speed: 1, memory: 20 },
    { id: "n2", speed: 1, memory: 20 }
  ]
}
const plan: Plan = { planId: "p1", epoch: "E1", round: "round_0", stages: [{ node: "n1", start: 0, end: 1 }, { node: "n2", start: 2, end: 3 }], zero1: false, actCkpt: false }

/** Runs `eff` on a fresh memory store of its own. */
const run = <A, E>(eff: Effect.Effect<A, E, EventStore>) => Effect.provide(eff, Layer.effect(EventStore, makeMemoryEventStore()))

const events = Effect.flatMap(EventStore, (s) => logOf(s, 0))

describe("promoting a plan (on the memory store)", () => {
  it.effect("records EpochPlanned and PlanPromoted on the epoch, PlanFrozen on chain A; a second promote records nothing", () =>
    Effect.gen(function* () {
      const { first, again, log } = yield* run(
        Effect.gen(function* () {
          yield* ensureGenesis
          const ctx = validationContext(yield* resolveCluster(cluster))
          const first = yield* promotePlan(plan, ctx)
          const again = yield* promotePlan(plan, ctx)
          return { first, again, log: yield* events }
        })
      )
      expect(log.slice(1).map((e) => [e.stream, e.type])).toEqual([
        [Streams.epoch("E1"), "EpochPlanned"],
        [Streams.epoch("E1"), "PlanPromoted"],
        [Streams.chainA, "PlanFrozen"]
      ])
      expect(first).toMatchObject({ recorded: true, entry: { status: "frozen", promotedSeq: 2, frozenSeq: 3 } })
      expect(again.recorded).toBe(false)
    })
  )

  it.effect("finishes a promotion whose freeze was cut off", () =>
    Effect.gen(function* () {
      const { out, log } = yield* run(
        Effect.gen(function* () {
          yield* ensureGenesis
          const store = yield* EventStore
          yield* store.append(Streams.epoch("E1"), [newEvent("EpochPlanned", { plan }), newEvent("PlanPromoted", { planId: "p1", epoch: "E1", round: "round_0" })], "no_stream")
          const out = yield* promotePlan(plan, validationContext(yield* resolveCluster(cluster)))
          return { out, log: yield* events }
        })
      )
      expect(out).toMatchObject({ recorded: true, entry: { status: "frozen" } })
      expect(log.map((e) => e.type)).toEqual(["GenesisCovenantSealed", "EpochPlanned", "PlanPromoted", "PlanFrozen"])
    })
  )

  it.effect("records nothing for an invalid plan or a plan id taken in another epoch", () =>
    Effect.gen(function* () {
      const { invalid, taken, added, plans } = yield* run(
        Effect.gen(function* () {
          yield* ensureGenesis
          const ctx = validationContext(yield* resolveCluster(cluster))
          const invalid = yield* Effect.flip(promotePlan({ ...plan, stages: [{ node: "n1", start: 0, end: 3 }] }, ctx))
          yield* promotePlan(plan, ctx)
          const before = (yield* events).length
          const taken = yield* Effect.flip(promotePlan({ ...plan, epoch: "E2" }, ctx))
          return { invalid, taken, added: (yield* events).length - before, plans: (yield* foldStream("*", PlansProjection)).state.plans.size }
        })
      )
      expect(invalid._tag).toBe("PlanInvalid")
      expect(invalid.message).toMatch(/needs memory 40, the device has 20/)
      expect(taken).toMatchObject({ _tag: "PlanRefused", kind: "IdTaken" })
      expect(added).toBe(0)
      expect(plans).toBe(1)
    })
  )

  it.effect("plans on the ledger's model and active nodes when no file says otherwise, and says what is missing", () =>
    Effect.gen(function* () {
      const { noModel, noNodes, ledger, file } = yield* run(
        Effect.gen(function* () {
          yield* ensureGenesis
          const noModel = yield* Effect.flip(resolveCluster(undefined))
          const store = yield* EventStore
          yield* store.append(Streams.chainA, [newEvent("ModelSpecPublished", { spec: defaultSpec })], "any")
          const noNodes = yield* Effect.flip(resolveCluster(undefined))
          const key = "ab".repeat(32)
          for (const [node, speed] of [["n1", 2], ["n2", 1]] as const)
            yield* store.append(Streams.node(node), [newEvent("NodeRegistered", { node, publicKey: key, keyHash: key, device: "cpu", memory: 1e9, speed })], "no_stream")
          yield* store.append(Streams.node("n2"), [newEvent("NodeBanned", { node: "n2", reason: "misbehaved" })], 0)
          return { noModel, noNodes, ledger: yield* resolveCluster(undefined), file: yield* resolveCluster({ devices: cluster.devices }) }
        })
      )
      expect(noModel.message).toMatch(/no model spec/)
      expect(noNodes.message).toMatch(/no devices/)
      expect(ledger.devices).toEqual([{ id: "n1", speed: 2, memory: 1e9 }])
      expect(ledger.layers).toEqual(blyanMoeLayerCosts(defaultSpec, { counting: { gradients: true, optimizer: true } }))
      // layers from the ledger, devices from the file
      expect(file).toEqual({ layers: ledger.layers, devices: cluster.devices })
    })
  )

  it.effect("a plan on registered nodes must fit them as registered, with the ledger's model: promote refuses one that does not and records nothing; audit stops at one written past it", () =>
    Effect.gen(function* () {
      const layerMemory = trainingLayerLoads(defaultSpec)[0]!.memory
      const { refused, before, after, replayed } = yield* run(
        Effect.gen(function* () {
          yield* ensureGenesis
          const store = yield* EventStore
          yield* store.append(Streams.chainA, [newEvent("ModelSpecPublished", { spec: defaultSpec })], "any")
          const key = "ab".repeat(32)
          // n1 holds two layers as registered, n2 one only.
          for (const [node, memory] of [["n1", 2 * layerMemory], ["n2", layerMemory]] as const)
            yield* store.append(Streams.node(node), [newEvent("NodeRegistered", { node, publicKey: key, keyHash: key, device: "cpu", memory, speed: 1 })], "no_stream")
          const last = defaultSpec.layers - 1
          const tooBig: Plan = { ...plan, planId: "too-big", stages: [{ node: "n1", start: 0, end: 1 }, { node: "n2", start: 2, end: last }] }
          // The cluster file claims more memory than the nodes registered: the ledger's word wins.
          const ctx = validationContext({ layers: trainingLayerLoads(defaultSpec), devices: [{ id: "n1", speed: 1, memory: 1e15 }, { id: "n2", speed: 1, memory: 1e15 }] })
          const before = (yield* events).length
          const refused = yield* Effect.flip(promotePlan(tooBig, ctx))
          const after = (yield* events).length
          yield* store.append(Streams.epoch("E1"), [newEvent("EpochPlanned", { plan: tooBig })], "any")
          return { refused, before, after, replayed: replay(yield* events) }
        })
      )
      expect(refused._tag).toBe("PlanInvalid")
      expect(refused.message).toMatch(/stage 1 on n2 needs memory \d+, the device has \d+/)
      expect(after).toBe(before)
      expect(replayed.firstBad).toMatchObject({ seq: before, reason: expect.stringMatching(/plan too-big is invalid: stage 1 on n2 needs memory/) })
    })
  )
})
