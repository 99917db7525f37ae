import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Exit, Layer } from "effect"
import { describe, expect, layer } from "@effect/vitest"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { auditLedger } from "../../actors/auditor.ts"
import { foldStream } from "../../actors/command.ts"
import { registerContributor } from "../../actors/contributors.ts"
import { initLedger } from "../../actors/genesis.ts"
import { loadModel } from "../../actors/model-ledger.ts"
import { trainPart } from "../../actors/pol-evaluation.ts"
import { completeRounds, runLocalRound } from "../../actors/round-coordinator.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { defaultPoLSettings } from "../../domain/pol/evaluation.ts"
import { signVerdict } from "../../domain/pol/rounds.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { BalancesProjection } from "../../domain/projections/balances.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"
import { contributorSeed, testLedgerKey, testTrust } from "../support/ledger.ts"
import { crashingAfter, freshLedger } from "../support/stores.ts"
import { logOf } from "../support/log.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"

const corpus = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/heldout.txt")))
const validators = [1, 2, 3].map((i) => keyPairFromSeed(sha256Hex(`validator ${i}`)))
const contributor = keyPairFromSeed(contributorSeed(1))
const intruder = keyPairFromSeed(sha256Hex("not a validator"))

/** A tiny ledger with a registered contributor, on which rounds run. */
const ledger = Effect.gen(function* () {
  const { events, blobs } = yield* freshLedger()
  const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
  yield* on(initLedger(tinySpec))
  yield* on(registerContributor(contributor.publicKey, testLedgerKey))
  return { events, blobs, on }
})

const round = (candidate: Parameters<typeof runLocalRound>[0]["candidate"]) =>
  runLocalRound({ candidate, contributorSeed: contributor.seed, validators, ledgerKey: testLedgerKey, heldOut, settings: defaultPoLSettings })


layer(Layer.provide(ModelRunnerLive, TestExecutor))((it) => {
  describe("a Proof-of-Learning round run in this process", () => {
    it.scoped("accepts a real improvement: the candidate's block, its expert's update and the learning reward; audit replays and checks it all", () =>
      Effect.gen(function* () {
        const { events, blobs, on } = yield* ledger
        const { weights } = yield* on(loadModel)
        const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
        const r = yield* on(round(candidate))
        expect(r, r.reason).toMatchObject({ accepted: true, target: "layer1.expert0" })
        // Two passing verdicts of three are a quorum: the third is not waited for.
        expect(r.verdicts).toHaveLength(2)
        for (const v of r.verdicts) expect(v.improvement).toBeGreaterThan(0.01)
        const { state } = yield* on(foldStream("*", ModelProjection))
        expect(state.current.get("layer1.expert0")?.block).toBe(r.block)
        const { state: balances } = yield* on(foldStream("*", BalancesProjection))
        expect(balances.balances.get(contributor.publicKey)?.toString()).toBe(r.reward)
        const audit = yield* on(auditLedger(testTrust))
        expect(audit.replay.firstBad).toBeUndefined()
        expect(audit.incomplete).toEqual([])
        // The same candidate again is a copy of the block it became.
        const again = yield* on(round(candidate))
        expect(again.accepted).toBe(false)
        expect(again.reason).toContain(`copy: a copy of block ${r.block}`)
        void events
        void blobs
      }),
      { timeout: 60_000 }
    )

    it.scoped("rejects a copy before evaluating it, and a change with no gain after; neither changes the model or pays anything", () =>
      Effect.gen(function* () {
        const { on } = yield* ledger
        const { weights } = yield* on(loadModel)
        const base = weights.parts.get("layer0.expert1")!
        const copy = yield* on(round({ name: base.name, tensors: Object.fromEntries(Object.entries(base.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((v) => v + 1e-7) }])) }))
        expect(copy).toMatchObject({ accepted: false, verdicts: [] })
        expect(copy.reason).toMatch(/^copy: a copy of block/)
        const scaled = yield* on(round({ name: base.name, tensors: Object.fromEntries(Object.entries(base.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((v) => v * 0.5) }])) }))
        expect(scaled.accepted).toBe(false)
        expect(scaled.verdicts).toHaveLength(2)
        const { state } = yield* on(foldStream("*", ModelProjection))
        expect(state.current.get("layer0.expert1")?.block).toBe(copy.base)
        expect((yield* on(foldStream("*", BalancesProjection))).state.supply).toBe(0n)
        expect((yield* on(auditLedger(testTrust))).replay.firstBad).toBeUndefined()
      }),
      { timeout: 60_000 }
    )

    it.scoped("audit refuses round events written around the coordinator: an acceptance without quorum, a forged verdict, a learning reward nobody earned", () =>
      Effect.gen(function* () {
        const { events, blobs, on } = yield* ledger
        const { weights } = yield* on(loadModel)
        const base = weights.parts.get("layer0.expert1")!
        const rejected = yield* on(round({ name: base.name, tensors: Object.fromEntries(Object.entries(base.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((v) => v * 0.5) }])) }))
        const log = yield* logOf(events)
        const stream = Streams.round(rejected.round)
        const forgeries = [
          [stream, newEvent("ContributionAccepted", { round: rejected.round, contribution: rejected.contribution, block: rejected.block, improvement: 0.5 }), "after round"],
          [Streams.rewards, newEvent("RewardPaid", { to: contributor.publicKey, amount: "1000", kind: "learning", cause: `${rejected.round}/${rejected.contribution}`, epoch: 0 }), "no accepted contribution earned"],
          [
            stream,
            newEvent(
              "PoLEvaluated",
              signVerdict({ round: rejected.round, contribution: rejected.contribution, validator: intruder.publicKey, seed: 1, baselineLoss: 2, candidateLoss: 1, improvement: 0.5, wins: 16, batches: 16, passes: true }, intruder.seed)
            ),
            "after round"
          ]
        ] as const
        for (const [s, e, why] of forgeries) {
          const forged: EventStoreApi = yield* makeMemoryEventStore(log)
          yield* forged.append(s, [e], "any")
          const audit = yield* auditLedger(testTrust).pipe(Effect.provideService(EventStore, forged), Effect.provideService(BlobStore, blobs))
          expect(audit.replay.firstBad?.reason).toContain(why)
        }
      }),
      { timeout: 60_000 }
    )

    it.scoped("a coordinator killed after any number of appends: the next run finishes the round as its log implies, once, and audit passes", () =>
      Effect.gen(function* () {
        const first = yield* ledger
        const { weights } = yield* first.on(loadModel)
        const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
        let finished = false
        for (let survive = 0; !finished && survive < 20; survive++) {
          const { events, blobs, on } = yield* ledger
          const killed = yield* Effect.exit(round(candidate).pipe(Effect.provideService(EventStore, crashingAfter(events, survive)), Effect.provideService(BlobStore, blobs)))
          finished = Exit.isSuccess(killed)
          yield* on(completeRounds)
          const log = yield* logOf(events)
          const audit = yield* on(auditLedger(testTrust))
          expect(audit.replay.firstBad, `killed after ${survive} appends`).toBeUndefined()
          expect(audit.incomplete).toEqual([])
          const rounds = [...audit.replay.state.rounds.values()]
          for (const r of rounds) expect(r.closed).toBe(true)
          // Accepted once the acceptance was recorded: then the block is current and paid once; else nothing changed.
          const accepted = log.some((e) => e.type === "ContributionAccepted")
          const { state } = yield* on(foldStream("*", ModelProjection))
          expect(state.current.get("layer1.expert0")?.block === rounds[0]?.contributions.values().next().value?.hash).toBe(accepted)
          expect(log.filter((e) => e.type === "RewardPaid").length).toBe(accepted ? 1 : 0)
          // Running it again records nothing.
          const head = yield* events.head
          yield* on(completeRounds)
          expect(yield* events.head).toEqual(head)
        }
        expect(finished).toBe(true)
      }),
      { timeout: 120_000 }
    )
  })
})
