/** What submit and improve do. Loaded when one of them runs (see pol-commands.ts). */
import * as path from "node:path"
import { Console, Effect, Either, Option } from "effect"
import { foldStream } from "../../actors/command.ts"
import { followLog } from "../../actors/log-follower.ts"
import { loadModel, signParts } from "../../actors/model-ledger.ts"
import { submitContribution } from "../../actors/round-service.ts"
import { fetchModelBlobs } from "../../actors/blob-exchange.ts"
import { makeMemoryBlobStore } from "../../adapters/blobs/memory.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { encodePart } from "../../domain/model/safetensors.ts"
import { trainPart } from "../../actors/pol-evaluation.ts"
import { runLocalRound } from "../../actors/round-coordinator.ts"
import type { RoundReport } from "../../domain/pol/report.ts"
import { splitTexts } from "../../actors/trainer.ts"
import { decodePart } from "../../domain/model/safetensors.ts"
import type { Part } from "../../domain/model/tensor.ts"
import { formatBly } from "../../domain/rewards/inference.ts"
import { homeConfig, setting } from "../config.ts"
import { localKey } from "../identity.ts"
import { existingLedgerKey, LedgerAccess, parseNatsBus } from "../ledger.ts"
import { networkTimings, roundSettings } from "../network-settings.ts"
import { modelRunnerLayer } from "../model-layer.ts"
import { registerOwnKey } from "./contributor-handlers.ts"
import { readFileBytes, readUtf8 } from "./files.ts"
import { emit, ExitCode, fail } from "./output.ts"

const lines = (r: RoundReport) =>
  [
    `${r.accepted ? "accepted" : "rejected"}: ${r.reason}`,
    `round   ${r.round} (${r.target}, base ${r.base.slice(0, 16)}…, candidate ${r.block.slice(0, 16)}…)`,
    ...r.verdicts.map((v) => `  ${v.validator.slice(0, 16)}… ${v.passes ? "pass" : "fail"}: loss ${v.baselineLoss.toFixed(4)} -> ${v.candidateLoss.toFixed(4)} (${(v.improvement * 100).toFixed(2)}%), better on ${v.wins} of ${v.batches} batches`),
    ...(r.reward === undefined ? [] : [`block   ${r.block} is now current; reward ${formatBly(BigInt(r.reward))} BLY`])
  ].join("\n")

/** The report on stdout; a rejection exits 1 with it. */
const told = (json: boolean, report: RoundReport) =>
  report.accepted ? emit(json, report, () => lines(report)) : fail(`rejected: ${report.reason}`, ExitCode.refused, report)

/** Run `candidate` through a round here with `count` local validators on `heldOut`. */
const decideHere = (json: boolean, candidate: Part, heldOut: Uint8Array, count: number) =>
  Effect.gen(function* () {
    if (count < 1 || count > 16) return yield* fail(`--validators must be within 1..16, got ${count}`, ExitCode.usage)
    const { key: ledgerKey, file } = yield* existingLedgerKey
    if (ledgerKey === undefined) return yield* fail(`a round here is opened by the ledger's key (${file}), which this machine does not hold`)
    const home = yield* setting(homeConfig)
    const me = yield* localKey(home, "contributor")
    if (yield* registerOwnKey(me.publicKey, ledgerKey)) yield* Console.error(`registered this machine's contributor key ${me.publicKey} with the ledger key`)
    // The validators' keys live beside a file ledger (in BLYAN_HOME for a network store).
    const location = (yield* LedgerAccess).location
    const dir = path.join(path.isAbsolute(location) ? location : home, "validators")
    const validators = yield* Effect.forEach(Array.from({ length: count }, (_, i) => i + 1), (i) => localKey(dir, `validator-${i}`))
    const { settings, deadlineMs } = yield* roundSettings
    yield* told(json, yield* runLocalRound({ candidate, contributorSeed: me.seed, validators, ledgerKey, heldOut, settings, deadlineMs }))
  })

/**
 * `eff` against the network at `url`: its log followed into a replica here until caught up and
 * the current weights fetched (each verified), as the store and blobs `eff` works on.
 */
const onNetwork = <A, E, R>(url: string, eff: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const servers = parseNatsBus(url)
    if (Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    const { timeoutMs } = yield* networkTimings
    const bus = yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
    const replica = yield* makeMemoryEventStore()
    const blobs = yield* makeMemoryBlobStore()
    const provide = <A1, E1, R1>(x: Effect.Effect<A1, E1, R1>) =>
      x.pipe(Effect.provideService(Bus, bus), Effect.provideService(EventStore, replica), Effect.provideService(BlobStore, blobs))
    yield* provide(
      Effect.gen(function* () {
        yield* followLog(replica, { timeoutMs })
        yield* fetchModelBlobs((yield* foldStream("*", ModelProjection)).state, timeoutMs)
      })
    )
    return yield* provide(eff)
  }).pipe(Effect.scoped)

/** Sign `candidate` with this machine's contributor key on the base the followed log has, and submit it to the network's round coordinator. */
const decideOnNetwork = (json: boolean, candidate: Part) =>
  Effect.gen(function* () {
    const me = yield* localKey(yield* setting(homeConfig), "contributor")
    const { state } = yield* foldStream("*", ModelProjection)
    const current = state.current.get(candidate.name)
    if (current === undefined) return yield* fail(`the network's model has no part ${candidate.name}`)
    const [block] = yield* signParts([candidate], () => [current.block], me.seed)
    const { timeoutMs } = yield* networkTimings
    const { deadlineMs } = yield* roundSettings
    // The coordinator fetches the weights, checks them, and gives its validators until the deadline.
    yield* told(json, yield* submitContribution(block!, encodePart(candidate), deadlineMs + 10 * timeoutMs))
  })

export const submit = (args: {
  readonly json: boolean
  readonly expert: string
  readonly weights: string
  readonly heldOut: Option.Option<string>
  readonly validators: number
  readonly nats: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const part = yield* decodePart(yield* readFileBytes(args.weights))
    if (part.name !== args.expert) return yield* fail(`${args.weights} holds part ${part.name}, not ${args.expert}`)
    if (Option.isSome(args.nats)) return yield* onNetwork(args.nats.value, decideOnNetwork(args.json, part))
    if (Option.isNone(args.heldOut)) return yield* fail("--held-out is needed for a round decided here (without --nats)", ExitCode.usage)
    yield* decideHere(args.json, part, yield* readUtf8(args.heldOut.value), args.validators)
  }).pipe(Effect.provide(modelRunnerLayer))

export const improve = (args: {
  readonly json: boolean
  readonly expert: string
  readonly steps: number
  readonly corpus: string
  readonly heldOut: Option.Option<string>
  readonly lr: number
  readonly seed: number
  readonly validators: number
  readonly nats: Option.Option<string>
}) =>
  Effect.gen(function* () {
    if (args.steps < 1) return yield* fail(`--steps must be at least 1, got ${args.steps}`, ExitCode.usage)
    if (!(args.lr > 0 && args.lr < 1)) return yield* fail(`--lr must be within (0, 1), got ${args.lr}`, ExitCode.usage)
    // The part trained on the model the store holds (this ledger's, or the network's as followed).
    const trained = Effect.gen(function* () {
      const { weights } = yield* loadModel
      if (!weights.parts.has(args.expert)) return yield* fail(`the model has no part ${args.expert}`)
      const given = Option.isSome(args.heldOut) ? yield* readUtf8(args.heldOut.value) : undefined
      const { corpus, heldOut } = yield* splitTexts({ corpus: yield* readUtf8(args.corpus), heldOut: given }, weights.spec.context)
      return { candidate: yield* trainPart(weights, args.expert, corpus, { steps: args.steps, batch: 8, lr: args.lr, seed: args.seed }), heldOut }
    })
    if (Option.isSome(args.nats)) return yield* onNetwork(args.nats.value, Effect.flatMap(trained, (t) => decideOnNetwork(args.json, t.candidate)))
    const t = yield* trained
    yield* decideHere(args.json, t.candidate, t.heldOut, args.validators)
  }).pipe(Effect.provide(modelRunnerLayer))
