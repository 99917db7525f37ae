/** What `blyan up` does. Loaded when it runs (see up.ts): the stores and the model stay out of `--help`. */
import { fileURLToPath } from "node:url"
import { Console, Effect, Either, Option, Schedule } from "effect"
import { serveBlobs } from "../../actors/blob-exchange.ts"
import { serveChat, type RouterSettings } from "../../actors/chat-service.ts"
import { serveLog } from "../../actors/log-server.ts"
import { serveTreeHeads } from "../../actors/tree-head-service.ts"
import type { LogProof, ProofUnavailable } from "../../actors/log-proofs.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"
import { serveAnnouncements } from "../../actors/node-admission.ts"
import { runNode } from "../../actors/node-agent.ts"
import { serveStageWork } from "../../actors/stage-worker.ts"
import { followStepReports } from "../../actors/pipeline-reports.ts"
import { transportSettings } from "../pipeline-settings.ts"
import { serveRegistry } from "../../actors/registry.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { homeConfig, setting } from "../config.ts"
import { localKey } from "../identity.ts"
import { createLedger, ledgerKey, parseNatsBus } from "../ledger.ts"
import { signLogHead, trackTreeHead } from "../../actors/tree-heads.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { modelRunnerLayer } from "../model-layer.ts"
import { networkTimings, roundSettings, routerSettings } from "../network-settings.ts"
import { runValidator } from "../../actors/validator.ts"
import { startProjector, type Projector } from "../../actors/projector.ts"
import { Explorer, explorerOf, serveExplorer } from "../../adapters/http/explorer-server.ts"
import { makeRoundDesk, serveRounds, type RoundDesk } from "../../actors/round-service.ts"
import type { KeyPair } from "../../domain/ledger/signing.ts"
import { readUtf8 } from "./files.ts"
import { trainHere, trainingSummary } from "./local-training.ts"
import { untrained } from "../../domain/projections/model.ts"
import { inProcessKey } from "../node-keys.ts"
import { emit, ExitCode, fail } from "./output.ts"

/**
 * Ends when the process that started us is gone (we were re-parented): `npm start` killed by a
 * signal sent to npm alone must not leave us holding the ledger's writer lock.
 */
const parentGone = Effect.gen(function* () {
  const parent = process.ppid
  yield* Effect.repeat(Effect.sync(() => process.ppid === parent), { schedule: Schedule.spaced("1 second"), while: (same) => same })
  yield* Console.error(`blyan up: parent process ${parent} is gone; stopping`)
})

/**
 * The network's services on `bus`, for as long as the scope: the log served to followers, blobs
 * by address, node registration and announcements, the router answering chat, the log's signed
 * tree heads for witnesses, and the round coordinator. This process holds the store; nodes and
 * validators never write the log. The router, for the explorer's chat.
 */
const serveNetwork = (
  bus: BusApi,
  router: RouterSettings,
  ledgerKey: KeyPair,
  consistency: (from: number, to: number) => Effect.Effect<LogProof, ProofUnavailable | StoreFailure>,
  desk: RoundDesk,
  projector: Projector
) =>
  Effect.gen(function* () {
    yield* Effect.all(
      [serveLog, serveBlobs, serveRegistry, serveAnnouncements(router.timeoutMs), serveTreeHeads(ledgerKey.publicKey, consistency), serveRounds(desk, router.timeoutMs)],
      { discard: true }
    )
    return yield* serveChat(router, projector)
  }).pipe(Effect.provideService(Bus, bus))

/** `count` node agents in this process, each serving every expert of every model; their replicas in memory, their blocks from this store. */
const inProcessNodes = (bus: BusApi, count: number) =>
  Effect.gen(function* () {
    if (count === 0) return
    const home = yield* setting(homeConfig)
    const apiKey = yield* inProcessKey(home, "node")
    const { timeoutMs, heartbeatMs } = yield* networkTimings
    const transport = yield* transportSettings
    for (let i = 1; i <= count; i++) {
      const node = `local-${i}`
      const key = yield* localKey(home, `up-${node}`)
      const replica = yield* makeMemoryEventStore()
      const agent = runNode(
        { node, apiKey, seed: key.seed, device: "cpu", memory: 0, models: "every", experts: "all", timeoutMs, heartbeatMs, watchMs: heartbeatMs, onStatus: (s, why) => console.error(`blyan up: node ${node}: ${s}${why === undefined ? "" : ` (${why})`}`) },
        replica
      )
      yield* Effect.forkScoped(agent.pipe(Effect.provideService(Bus, bus), Effect.catchAll((e) => Console.error(`blyan up: ${e.message}`))))
      // Each node also runs pipeline stages for `train --pipeline --plan`.
      yield* serveStageWork(node, transport).pipe(Effect.provideService(Bus, bus), Effect.catchAll((e) => Console.error(`blyan up: node ${node}: no stage work: ${e.message}`)))
    }
  })

/** `count` validators in this process, all drawing from `heldOut`; their replicas in memory, their weights from this store. */
const inProcessValidators = (bus: BusApi, count: number, heldOut: Uint8Array) =>
  Effect.gen(function* () {
    if (count === 0) return
    const home = yield* setting(homeConfig)
    const apiKey = yield* inProcessKey(home, "validator")
    const { timeoutMs, heartbeatMs } = yield* networkTimings
    for (let i = 1; i <= count; i++) {
      const key = yield* localKey(home, `up-validator-${i}`)
      const replica = yield* makeMemoryEventStore()
      const validator = runValidator({ key, apiKey, heldOut, timeoutMs, heartbeatMs, onStatus: (line) => console.error(`blyan up: validator ${i}: ${line}`) }, replica)
      yield* Effect.forkScoped(validator.pipe(Effect.provideService(Bus, bus), Effect.catchAll((e) => Console.error(`blyan up: validator ${i}: ${e.message}`))))
    }
  })

/** The shipped corpus, beside the bundle this runs from (dist/ in the package). */
const shipped = (name: string) => readUtf8(fileURLToPath(new URL(`../docs/corpus/${name}`, import.meta.url)))

/**
 * A fresh ledger's model trained on the shipped corpus through the normal path (blocks signed by
 * this machine's contributor key, a `ModelTrained`, the experts' updates that nodes hot-swap);
 * what it did on stderr. A failure is told, not fatal: the network runs on.
 */
const firstTraining = (steps: number) =>
  Effect.gen(function* () {
    const texts = { corpus: yield* shipped("train.txt"), heldOut: yield* shipped("heldout.txt") }
    const trained = yield* trainHere(texts, { steps, batch: 8, lr: 3e-3, seed: 0 }, "blyan up: training")
    yield* Console.error(`blyan up: ${trainingSummary(trained).replaceAll("\n", "; ")}`)
  }).pipe(Effect.catchAll((e) => Console.error(`blyan up: the first training failed: ${e.message}`)))

/**
 * A Blyan network: the ledger, held open as its writer until interrupted, with its router, round
 * coordinator, `nodes` node agents and `validators` validators; on the memory bus inside this
 * process, or served over NATS with `--nats`.
 */
export const up = ({
  json,
  nats,
  nodes,
  validators,
  heldOut,
  host,
  port,
  trainSteps
}: {
  readonly json: boolean
  readonly nats: Option.Option<string>
  readonly nodes: Option.Option<number>
  readonly validators: number
  readonly heldOut: Option.Option<string>
  readonly host: string
  readonly port: number
  readonly trainSteps: number
}) =>
  Effect.gen(function* () {
    const servers = Option.isNone(nats) ? undefined : parseNatsBus(nats.value)
    if (servers !== undefined && Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    const count = Option.getOrElse(nodes, () => (servers === undefined ? 2 : 0))
    if (count < 0 || count > 64) return yield* fail(`--nodes must be within 0..64, got ${count}`, ExitCode.usage)
    if (validators < 0 || validators > 16) return yield* fail(`--validators must be within 0..16, got ${validators}`, ExitCode.usage)
    if (port < 0 || port > 65535) return yield* fail(`--port must be within 0..65535, got ${port}`, ExitCode.usage)
    if (trainSteps < 0 || trainSteps > 100_000) return yield* fail(`--train-steps must be within 0..100000, got ${trainSteps}`, ExitCode.usage)
    if (validators > 0 && Option.isNone(heldOut)) return yield* fail("--validators needs --held-out: the text they draw their batches from", ExitCode.usage)
    const heldOutText = Option.isSome(heldOut) ? yield* readUtf8(heldOut.value) : new Uint8Array()
    const router = yield* routerSettings
    const r = yield* createLedger(defaultSpec)
    // The ledger's key signs the tree head as it moves, and once more when this process stops (after the nodes have retired).
    const key = yield* ledgerKey
    // Every append from here on goes through the tracked store, which keeps the tree head.
    const tracked = yield* trackTreeHead
    // The head it starts from, signed from the tree it keeps (the log is read once at start).
    yield* signLogHead(key, tracked.head)
    const sign = signLogHead(key, tracked.head).pipe(Effect.catchAll((e) => Effect.logWarning(`the tree head was not signed: ${e.message}`)))
    yield* Effect.addFinalizer(() => sign)
    yield* Effect.forkScoped(Effect.repeat(sign, Schedule.spaced("5 seconds")))
    yield* Effect.gen(function* () {
      const bus = servers === undefined ? yield* makeMemoryBus() : yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
      // The round coordinator's desk, where contributions over the bus and over HTTP are decided.
      const desk = yield* makeRoundDesk({ ...(yield* roundSettings), ledgerKey: key, timeoutMs: router.timeoutMs, staleMs: router.staleMs }).pipe(Effect.provideService(Bus, bus))
      // The live read models, one set for the router and the explorer.
      const projector = yield* startProjector
      const chat = yield* serveNetwork(bus, router, key, tracked.consistency, desk, projector)
      yield* inProcessNodes(bus, count)
      yield* inProcessValidators(bus, validators, heldOutText)
      // The page sits beside the bundle this runs from (dist/web).
      const service = explorerOf(projector, tracked.store, yield* BlobStore, { contribute: desk.decide, chat: chat.answer })
      // Pipeline trainers on this bus report their steps into the metrics.
      yield* followStepReports(service.metrics.observeStep).pipe(Effect.provideService(Bus, bus))
      const explorer = yield* serveExplorer({ host, port, page: fileURLToPath(new URL("./web", import.meta.url)) }).pipe(
        Effect.provideService(Explorer, service),
        Effect.catchTag("ServeError", (e) => fail(`the explorer cannot listen on ${host}:${port}: ${String(e.cause)}`, ExitCode.unavailable))
      )
      // A model still at its genesis weights answers in random bytes: it is trained once, here, as `train` would.
      yield* projector.awaitSeq((yield* tracked.store.head)?.seq ?? -1)
      const training = trainSteps > 0 && untrained(projector.state().model) ? trainSteps : null
      if (training !== null) yield* Effect.forkScoped(firstTraining(training))
      const on = servers === undefined ? undefined : servers.right.join(",")
      yield* emit(json, { data: r.location, genesis: GENESIS_HASH, head: r.head, created: r.genesis, nats: on ?? null, nodes: count, validators, explorer, training }, () =>
        [
          `blyan up: ledger ${r.location}${r.genesis ? " (initialised)" : ""}`,
          `genesis ${GENESIS_HASH}`,
          `head    seq ${r.head?.seq} ${r.head?.hash}`,
          on === undefined
            ? `network in this process (memory bus): router, ${count} node${count === 1 ? "" : "s"} and ${validators} validator${validators === 1 ? "" : "s"}`
            : `serving the ledger, blobs, node registration, chat and rounds on ${on}; ${count} node${count === 1 ? "" : "s"} and ${validators} validator${validators === 1 ? "" : "s"} in this process`,
          `explorer ${explorer}`,
          ...(training === null ? [] : [`training the genesis model on the shipped corpus (${training} steps, progress below); chat answers in text once its blocks are recorded`]),
          "running; Ctrl-C to stop"
        ].join("\n")
      )
      yield* parentGone
    }).pipe(Effect.provideService(EventStore, tracked.store))
  }).pipe(Effect.scoped, Effect.provide(modelRunnerLayer), Effect.onInterrupt(() => Console.error("blyan up: stopped, ledger closed")))
