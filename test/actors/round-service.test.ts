import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Exit, Layer, Schedule } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { auditLedger } from "../../actors/auditor.ts"
import { serveBlobs } from "../../actors/blob-exchange.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { registerContributor } from "../../actors/contributors.ts"
import { initLedger } from "../../actors/genesis.ts"
import { serveLog } from "../../actors/log-server.ts"
import { loadModel, signParts } from "../../actors/model-ledger.ts"
import { askOwner, serveJson } from "../../actors/owner-requests.ts"
import { trainPart } from "../../actors/pol-evaluation.ts"
import { makeRoundDesk, serveRounds, submitContribution } from "../../actors/round-service.ts"
import { runLocalRound } from "../../actors/round-coordinator.ts"
import { runValidator } from "../../actors/validator.ts"
import { makeMemoryBlobStore } from "../../adapters/blobs/memory.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed, type KeyPair } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { encodePart } from "../../domain/model/safetensors.ts"
import type { Part } from "../../domain/model/tensor.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { defaultPoLSettings } from "../../domain/pol/evaluation.ts"
import { signVerdict } from "../../domain/pol/rounds.ts"
import { EvaluationRequest, signJoin, ValidatorRefused } from "../../domain/pol/validator-wire.ts"
import { KeysProjection, decideIssueKey } from "../../domain/projections/keys.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"
import { contributorSeed, testLedgerKey, testTrust } from "../support/ledger.ts"
import { crashingAfter, freshLedger } from "../support/stores.ts"
import { logOf } from "../support/log.ts"

const corpus = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/heldout.txt")))
const contributor = keyPairFromSeed(contributorSeed(1))
const validatorKey = (i: number) => keyPairFromSeed(sha256Hex(`network validator ${i}`))
const VALIDATOR_API_KEY = "bly_validator_test"
const NODE_API_KEY = "bly_node_test"

const issue = (key: string, role: "validator" | "node") =>
  handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, sha256Hex(key), role) })

/** A tiny model's ledger with a registered contributor and API keys. */
const ledger = Effect.gen(function* () {
  const bus = yield* makeMemoryBus()
  const { events, blobs } = yield* freshLedger()
  const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(Bus, bus))
  yield* on(initLedger(tinySpec))
  yield* on(registerContributor(contributor.publicKey, testLedgerKey))
  yield* on(issue(VALIDATOR_API_KEY, "validator"))
  yield* on(issue(NODE_API_KEY, "node"))
  return { bus, events, blobs, on }
})

const serve = (on: Effect.Effect.Success<typeof ledger>["on"]) =>
  on(Effect.all([serveLog, serveBlobs, Effect.flatMap(makeRoundDesk({ ledgerKey: testLedgerKey, settings: defaultPoLSettings, deadlineMs: 20_000, timeoutMs: 5000, staleMs: 60_000 }), (desk) => serveRounds(desk, 5000))]))

/** That ledger serving its log, blobs and rounds on a memory bus. */
const network = Effect.tap(ledger, ({ on }) => serve(on))

/** A validator of its own replica and blobs, on `bus`; returns once it answers on its subject. */
const startValidator = (bus: BusApi, key: KeyPair) =>
  Effect.gen(function* () {
    const replica = yield* makeMemoryEventStore()
    const blobs = yield* makeMemoryBlobStore()
    yield* Effect.forkScoped(
      runValidator({ key, apiKey: VALIDATOR_API_KEY, heldOut, timeoutMs: 5000, heartbeatMs: 500, onStatus: () => undefined }, replica).pipe(
        Effect.provideService(Bus, bus),
        Effect.provideService(BlobStore, blobs)
      )
    )
    yield* answering(bus, key)
  })

/** Until `key`'s subject answers (a malformed request is refused in words once it is served). */
const answering = (bus: BusApi, key: KeyPair) =>
  Effect.retry(bus.request(Subjects.validatorEvaluate(key.publicKey), new TextEncoder().encode("{}"), { timeoutMs: 200 }), Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(200))))

/** A validator that joins and never answers. */
const silentValidator = (bus: BusApi, key: KeyPair) =>
  askOwner(Subjects.validatorJoin, signJoin(key, sha256Hex(heldOut), VALIDATOR_API_KEY), 2000, (reason) => new ValidatorRefused({ message: reason })).pipe(Effect.provideService(Bus, bus))

/** A validator that answers at once with a passing verdict on batches of its own choosing (seed 1), signed with its key. */
const lyingValidator = (bus: BusApi, key: KeyPair) =>
  Effect.gen(function* () {
    yield* silentValidator(bus, key)
    yield* serveJson(Subjects.validatorEvaluate(key.publicKey), EvaluationRequest, (req) =>
      Effect.succeed({
        verdict: signVerdict(
          { round: req.round, contribution: req.contribution, validator: key.publicKey, seed: 1, baselineLoss: 5, candidateLoss: 4, improvement: 0.2, wins: 12, batches: 12, passes: true, heldOut: sha256Hex(heldOut) },
          key.seed
        )
      })
    ).pipe(Effect.provideService(Bus, bus))
  })

/** The contributor's side: sign `candidate` on the current base (or `base`) and submit it over the bus. */
const contribute = (bus: BusApi, candidate: Part, base: string) =>
  Effect.gen(function* () {
    const [block] = yield* signParts([candidate], () => [base], contributor.seed).pipe(Effect.provideService(BlobStore, yield* makeMemoryBlobStore()))
    return yield* Effect.either(submitContribution(block!, encodePart(candidate), 60_000).pipe(Effect.provideService(Bus, bus)))
  })

// Live: the validators' waits, the coordinator's deadline and the joins' heartbeats run on the real clock.
const Runtime = Layer.provide(ModelRunnerLive, TestExecutor)

describe("rounds decided by validators over the bus", () => {
  it.scopedLive("two validators of three accept a real improvement, each on its own replica and fetched weights; the silent third is not waited for past the quorum", () =>
    Effect.gen(function* () {
      const { bus, events, on } = yield* network
      yield* startValidator(bus, validatorKey(1))
      yield* startValidator(bus, validatorKey(2))
      yield* silentValidator(bus, validatorKey(3))
      const { state } = yield* on(foldStream("*", ModelProjection))
      const { weights } = yield* on(loadModel)
      const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
      const r = yield* contribute(bus, candidate, state.current.get("layer1.expert0")!.block)
      expect(Either.isRight(r), Either.isLeft(r) ? r.left.message : "").toBe(true)
      const report = Either.getOrThrow(r)
      expect(report, report.reason).toMatchObject({ accepted: true, target: "layer1.expert0" })
      expect(report.verdicts.map((v) => v.validator).sort()).toEqual([validatorKey(1).publicKey, validatorKey(2).publicKey].sort())
      const { state: after } = yield* on(foldStream("*", ModelProjection))
      expect(after.current.get("layer1.expert0")?.block).toBe(report.block)
      const log = yield* logOf(events)
      const opened = log.find((e) => e.type === "RoundOpened")!.data as { heldOut: string | null; validators: string[] }
      expect(opened.heldOut).toBeNull()
      expect(opened.validators).toHaveLength(3)
      // Each verdict names the held-out text its validator drew from.
      for (const e of log.filter((x) => x.type === "PoLEvaluated")) expect((e.data as { heldOut?: string }).heldOut).toBe(sha256Hex(heldOut))
      const audit = yield* on(auditLedger(testTrust))
      expect(audit.replay.firstBad).toBeUndefined()
    }).pipe(Effect.provide(Runtime)),
    { timeout: 120_000 }
  )

  it.scopedLive("a verdict on batches of the validator's own choosing is not counted: with one silent and one lying of four, no quorum, and nothing changes", () =>
    Effect.gen(function* () {
      const { bus, events, on } = yield* network
      yield* startValidator(bus, validatorKey(1))
      yield* startValidator(bus, validatorKey(2))
      yield* silentValidator(bus, validatorKey(3))
      yield* lyingValidator(bus, validatorKey(4))
      const { state } = yield* on(foldStream("*", ModelProjection))
      const { weights } = yield* on(loadModel)
      const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
      const r = Either.getOrThrow(yield* contribute(bus, candidate, state.current.get("layer1.expert0")!.block))
      expect(r.accepted).toBe(false)
      expect(r.reason).toMatch(/^no quorum before the deadline: 2 of the 3 votes needed/)
      const log = yield* logOf(events)
      expect(log.filter((e) => e.type === "PoLEvaluated").map((e) => (e.data as { validator: string }).validator).sort()).toEqual(
        [validatorKey(1).publicKey, validatorKey(2).publicKey].sort()
      )
      const { state: after } = yield* on(foldStream("*", ModelProjection))
      expect(after.current.get("layer1.expert0")?.block).toBe(state.current.get("layer1.expert0")!.block)
      expect(log.filter((e) => e.type === "RewardPaid")).toEqual([])
      expect((yield* on(auditLedger(testTrust))).replay.firstBad).toBeUndefined()
    }).pipe(Effect.provide(Runtime)),
    { timeout: 120_000 }
  )

  it.scopedLive("a round its coordinator was stopped in (after the opening, before any verdict) is finished when the coordinator starts again: rejected for that reason and closed; nothing else changes", () =>
    Effect.gen(function* () {
      const { events, blobs, on } = yield* ledger
      const { weights, blocks } = yield* on(loadModel)
      const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
      const killed = yield* Effect.exit(
        runLocalRound({ candidate, contributorSeed: contributor.seed, validators: [validatorKey(1)], ledgerKey: testLedgerKey, heldOut, settings: defaultPoLSettings }).pipe(
          Effect.provideService(EventStore, crashingAfter(events, 1)),
          Effect.provideService(BlobStore, blobs)
        )
      )
      expect(Exit.isFailure(killed)).toBe(true)
      yield* serve(on)
      const log = yield* logOf(events)
      expect(log.filter((e) => e.stream.startsWith("round-")).map((e) => e.type)).toEqual(["RoundOpened", "ContributionSubmitted", "ContributionRejected", "RoundClosed"])
      expect(log.find((e) => e.type === "ContributionRejected")!.data).toMatchObject({ reason: "the round's coordinator stopped before deciding it" })
      expect((yield* on(foldStream("*", ModelProjection))).state.current.get("layer1.expert0")?.block).toBe(blocks.get("layer1.expert0"))
      expect((yield* on(auditLedger(testTrust))).replay.firstBad).toBeUndefined()
    }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )

  it.scopedLive("refused before any round: a join with another role's key, no validator, a stale base, a forged signature; none records anything", () =>
    Effect.gen(function* () {
      const { bus, events, on } = yield* network
      const nodeJoin = yield* Effect.either(
        askOwner(Subjects.validatorJoin, signJoin(validatorKey(1), sha256Hex(heldOut), NODE_API_KEY), 2000, (reason) => new ValidatorRefused({ message: reason })).pipe(
          Effect.provideService(Bus, bus)
        )
      )
      expect(Either.isLeft(nodeJoin) && nodeJoin.left.message).toMatch(/the API key is for a node, not a validator/)
      const { state } = yield* on(foldStream("*", ModelProjection))
      const { weights } = yield* on(loadModel)
      const part = weights.parts.get("layer0.expert1")!
      const candidate: Part = { name: part.name, tensors: Object.fromEntries(Object.entries(part.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((x) => x * 1.01) }])) } as Part
      const head = yield* events.head
      const none = yield* contribute(bus, candidate, state.current.get("layer0.expert1")!.block)
      expect(Either.isLeft(none) && none.left.message).toMatch(/no validator is available/)
      yield* silentValidator(bus, validatorKey(1))
      const stale = yield* contribute(bus, candidate, state.current.get("layer0.expert0")!.block)
      expect(Either.isLeft(stale) && stale.left.message).toMatch(/^stale base/)
      const [block] = yield* signParts([candidate], () => [state.current.get("layer0.expert1")!.block], contributor.seed)
        .pipe(Effect.provideService(BlobStore, yield* makeMemoryBlobStore()))
      const forged = yield* Effect.either(
        submitContribution({ ...block!, signature: "0".repeat(128) }, encodePart(candidate), 60_000).pipe(Effect.provideService(Bus, bus))
      )
      expect(Either.isLeft(forged) && forged.left.message).toMatch(/^bad signature/)
      expect(yield* events.head).toEqual(head)
    }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )
})
