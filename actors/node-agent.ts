/**
 * A GPU node: it registers with its API key and ed25519 identity, keeps a checked replica of the
 * log, fetches the current blocks of the experts it hosts (of the built-in model or of imported
 * ones) by hash and verifies them, serves their
 * forward passes, heartbeats its load, swaps in the new block when `ExpertUpdated` names one, and
 * drains when its scope closes. Its lifecycle is `nodeMachine`, hosted here: each transition the
 * ledger records is sent, signed, to the owner of the node's stream (nodes never write the log).
 */
import { Effect, Either, Exit, Fiber, Schedule, Schema, Scope, Stream } from "effect"
import { createActor } from "xstate"
import { Bus } from "../domain/ports/bus.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import type { Executor } from "../domain/ports/executor.ts"
import { announcement, nodeMachine, nodeStatus, type HostedBlocks, type NodeSnapshot } from "../domain/machines/node.ts"
import { chooseModel, ModelProjection, modelNames, type ModelState } from "../domain/projections/model.ts"
import { makeExpertModels, type ExpertForward, type ExpertModel } from "../domain/model/expert-models.ts"
import { expertForward } from "../domain/model/forward.ts"
import { initPart } from "../domain/model/init.ts"
import { buildModelGraphs } from "../domain/model/onnx/graphs.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import { defaultSpec, expertPart } from "../domain/model/spec.ts"
import { derivePublicHex } from "../domain/ledger/signing.ts"
import { signAnnouncement, type HostedExpertClaim } from "../domain/network/announcement.ts"
import { encodeHeartbeat } from "../domain/network/heartbeat.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { fetchBlob } from "./blob-exchange.ts"
import { measureLink } from "./link-probe.ts"
import { foldStream } from "./command.ts"
import { serveExpert, serveLayer, type HostedExpert, type ServiceLoad } from "./expert-service.ts"
import { followLog, type Replica } from "./log-follower.ts"
import { askOwner } from "./owner-requests.ts"
import { registerNode } from "./registry.ts"

/** Why a node stopped short of serving, or stopped serving. */
export class NodeFailed extends Schema.TaggedError<NodeFailed>()("NodeFailed", { message: Schema.String }) {}

export type NodeAgentConfig = {
  readonly node: string
  readonly apiKey: string
  /** The node's ed25519 seed (hex): its identity. */
  readonly seed: string
  readonly device: string
  /** Bytes of accelerator memory offered. */
  readonly memory: number
  /** The models whose experts to host, by name: the one published last, every one the ledger holds, or these. */
  readonly models: "latest" | "every" | ReadonlyArray<string>
  /** The experts to host of each of those models: all of them, or these. */
  readonly experts: "all" | ReadonlyArray<{ readonly layer: number; readonly expert: number }>
  readonly timeoutMs: number
  readonly heartbeatMs: number
  /** How often the replica is looked at for updated experts. */
  readonly watchMs: number
  /** Told of every lifecycle state the node enters (for its operator's log). */
  readonly onStatus: (status: string, reason: string | undefined) => void
}

/** Forward passes per second of one expert on one row, on a reference expert of the default model. */
const measureSpeed = Effect.gen(function* () {
  const graphs = buildModelGraphs(defaultSpec)
  const part = expertPart(0, 0)
  const weights = { spec: defaultSpec, parts: new Map([[part, initPart(defaultSpec, part)]]) }
  const x = new Float32Array(defaultSpec.dModel).fill(0.5)
  yield* expertForward(graphs, weights, part, x, 1)
  const runs = 32
  const start = performance.now()
  for (let i = 0; i < runs; i++) yield* expertForward(graphs, weights, part, x, 1)
  return runs / Math.max((performance.now() - start) / 1000, 1e-6)
})

/** An expert a node hosts: which model's, and where. */
type Slot = { readonly model: ExpertModel; readonly layer: number; readonly expert: number }

const hostedSlots = (model: ExpertModel, experts: NodeAgentConfig["experts"]): ReadonlyArray<Slot> =>
  (experts === "all" ? Array.from({ length: model.layers * model.experts }, (_, i) => ({ layer: Math.floor(i / model.experts), expert: i % model.experts })) : experts).map((e) => ({
    model,
    ...e
  }))

/** The models `models` names on the ledger `state` describes, or why one is not there. */
const chosenModels = (state: ModelState, models: NodeAgentConfig["models"]) => {
  const names = models === "latest" ? [undefined] : models === "every" ? modelNames(state) : models
  if (names.length === 0) return Either.left("the ledger holds no model")
  return Either.all(names.map((name) => chooseModel(state, name)))
}

/** Run a node until interrupted (it drains then) or it fails. */
export const runNode = (config: NodeAgentConfig, replica: Replica) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const blobs = yield* BlobStore
    const context = yield* Effect.context<Executor>()
    const identity = { node: config.node, seed: config.seed }
    const fail = (message: string) => new NodeFailed({ message: `node ${config.node}: ${message}` })

    // The lifecycle, and the owner told of each transition the ledger records, in order.
    const actor = createActor(nodeMachine).start()
    const announcements: Array<ReturnType<typeof announcement> & {}> = []
    let before: NodeSnapshot = actor.getSnapshot()
    actor.subscribe((after) => {
      const a = announcement(before, after)
      if (a !== undefined) announcements.push(a)
      if (nodeStatus(after) !== nodeStatus(before)) config.onStatus(nodeStatus(after), after.context.reason)
      before = after
    })
    /** Each hosted expert by its block name. */
    const slots = new Map<string, Slot>()
    const hostedClaims = (blocks: HostedBlocks): HostedExpertClaim[] =>
      Object.entries(blocks).map(([name, block]) => {
        const { model, layer, expert } = slots.get(name)!
        return { layer, expert, block, ...(model.imported ? { model: model.name } : {}) }
      })
    const announce = Effect.gen(function* () {
      while (announcements.length > 0) {
        const a = announcements.shift()!
        const kind = a.type === "NodeRetired" ? "retired" : "serving"
        const claim = { node: config.node, kind, hosted: kind === "retired" ? [] : hostedClaims(actor.getSnapshot().context.blocks) } as const
        yield* askOwner(Subjects.nodeAnnounce, signAnnouncement(claim, config.seed), config.timeoutMs, fail)
      }
    })
    const failWith = (e: { readonly message: string }) =>
      Effect.zipRight(Effect.sync(() => actor.send({ type: "failed", reason: e.message })), Effect.fail(e instanceof NodeFailed ? e : fail(e.message)))

    // Registering: the profile names the key, the device, the measured throughput and link.
    const speed = yield* measureSpeed
    const bandwidth = yield* measureLink(config.node, config.timeoutMs).pipe(Effect.catchAll((e) => failWith({ message: `measuring its link: ${e.message}` })))
    const profile = { node: config.node, publicKey: derivePublicHex(config.seed), device: config.device, memory: config.memory, speed, bandwidth }
    const registered = yield* Effect.either(registerNode(profile, config.apiKey, config.seed, config.timeoutMs))
    if (Either.isLeft(registered)) {
      if (registered.left._tag === "RegistrationRefused") actor.send({ type: "refused", reason: registered.left.message.replace(/^registration refused: /, "") })
      else actor.send({ type: "failed", reason: registered.left.message })
      return yield* fail(registered.left.message)
    }
    actor.send({ type: "registered", node: config.node })

    // Syncing: the replica catches up, every link checked, then follows.
    const followed = yield* followLog(replica, { timeoutMs: config.timeoutMs }).pipe(Effect.catchAll(failWith))
    actor.send({ type: "synced", head: followed.head?.seq ?? -1 })
    const modelState = foldStream("*", ModelProjection).pipe(Effect.provideService(EventStore, replica))
    const { state, revision } = yield* modelState
    const chosen = chosenModels(state, config.models)
    if (Either.isLeft(chosen)) return yield* failWith({ message: chosen.left })
    const expertModels = makeExpertModels()
    for (const slot of chosen.right.flatMap((m) => hostedSlots(expertModels(m), config.experts))) slots.set(slot.model.blockName(slot.layer, slot.expert), slot)

    // Loading: each hosted expert's current block, fetched by its payload's hash and verified.
    const load = yield* Effect.forEach(slots.values(), (slot) => currentExpert(state, slot)).pipe(Effect.catchAll(failWith))
    const servingLoad: ServiceLoad = { queue: 0, served: 0 }
    /** Each hosted expert by block name, and the scope serving it in its queue group: closing it takes that block off the bus. */
    const hosted = new Map<string, { readonly expert: HostedExpert; readonly scope: Scope.CloseableScope }>()
    /** The same experts by the block they hold now: what a request names. */
    const byBlock = new Map<string, HostedExpert>()
    /** The scope of the requests addressed to this node, a subscription per layer it serves, answered from `hosted` as it is then. */
    const addressed = yield* Scope.make()
    const served = new Set<number>()
    const serve = ({ name, layer, expert, block, model, forward }: Fetched) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const now: HostedExpert = { layer, expert, block, width: model.width, forward }
        yield* serveExpert(now, identity, servingLoad).pipe(Scope.extend(scope), Effect.provide(context))
        const old = hosted.get(name)
        hosted.set(name, { expert: now, scope })
        byBlock.set(block, now)
        if (!served.has(layer)) {
          served.add(layer)
          yield* serveLayer(layer, (b) => byBlock.get(b), identity, servingLoad).pipe(Scope.extend(addressed), Effect.provide(context))
        }
        // The old block answers what it has taken, then leaves.
        if (old !== undefined && old.expert.block !== block) byBlock.delete(old.expert.block)
        if (old !== undefined) yield* Scope.close(old.scope, Exit.void)
      })
    // Draining when the scope closes: no new requests, the taken ones answered, retirement announced.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        const active = actor.getSnapshot().status === "active"
        if (active) actor.send({ type: "drain" })
        yield* Scope.close(addressed, Exit.void)
        for (const { scope } of hosted.values()) yield* Scope.close(scope, Exit.void)
        if (!active) return
        actor.send({ type: "drained" })
        yield* announce.pipe(Effect.catchAll((e) => Effect.logWarning(`retirement not recorded: ${e.message}`)))
      })
    )

    const fetched = yield* Effect.forEach(load, (e) => fetchExpert(e, config.timeoutMs).pipe(Effect.provideService(Bus, bus), Effect.provideService(BlobStore, blobs))).pipe(
      Effect.catchAll(failWith)
    )
    for (const f of fetched) yield* serve(f).pipe(Effect.catchAll(failWith))
    actor.send({ type: "loaded", blocks: Object.fromEntries(fetched.map((f) => [f.name, f.block])) })
    yield* announce.pipe(Effect.catchAll(failWith))

    const heartbeat = Effect.suspend(() =>
      bus.publish(Subjects.nodeHeartbeat(config.node), encodeHeartbeat({ node: config.node, status: nodeStatus(actor.getSnapshot()), queue: servingLoad.queue, served: servingLoad.served }))
    ).pipe(Effect.ignore, Effect.repeat(Schedule.spaced(`${config.heartbeatMs} millis`)))

    // Hot-swap: an `ExpertUpdated` of a hosted expert in the replica names its new block.
    let seen = revision
    const watch = Effect.gen(function* () {
      const head = yield* replica.head
      if (head === undefined || head.seq <= seen) return
      const updates = yield* Stream.runCollect(Stream.filter(replica.readAll(seen + 1), (e) => e.type === "ExpertUpdated"))
      seen = head.seq
      for (const e of updates) {
        const data = e.data as { readonly name: string; readonly block: string }
        actor.send({ type: "expert.updated", part: data.name, block: data.block })
      }
      const pending = actor.getSnapshot().context.pending
      if (Object.keys(pending).length === 0) return
      const { state: now } = yield* modelState
      for (const [part, block] of Object.entries(pending)) {
        const next = yield* currentExpert(now, slots.get(part)!)
        if (next.block !== block) continue
        const f = yield* fetchExpert(next, config.timeoutMs).pipe(Effect.provideService(Bus, bus), Effect.provideService(BlobStore, blobs))
        yield* serve(f)
        actor.send({ type: "swapped", part, block })
      }
      yield* announce
    }).pipe(Effect.catchAll(failWith), Effect.repeat(Schedule.spaced(`${config.watchMs} millis`)))

    yield* Effect.forkScoped(heartbeat)
    const watcher = yield* Effect.forkScoped(watch)
    yield* Effect.raceFirst(followed.following.pipe(Effect.catchAll(failWith)), Fiber.join(watcher))
  }).pipe(Effect.scoped)

/** The current block of a hosted expert as the replica says, with the payload's address. */
const currentExpert = (state: ModelState, slot: Slot) => {
  const name = slot.model.blockName(slot.layer, slot.expert)
  const current = state.current.get(name)
  return current === undefined
    ? Effect.fail(new NodeFailed({ message: `the ledger has no ${name}` }))
    : Effect.succeed({ ...slot, name, block: current.block, payload: current.payload })
}

type Fetched = Slot & { readonly name: string; readonly block: string; readonly forward: ExpertForward }

/** An expert's weights: from the local blob store, or over the bus and then kept; verified by hash either way, and made its forward. */
const fetchExpert = (e: Slot & { readonly name: string; readonly block: string; readonly payload: string }, timeoutMs: number) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const bytes = (yield* blobs.has(e.payload)) ? yield* blobs.get(e.payload) : yield* fetchBlob(e.payload, { timeoutMs })
    yield* blobs.put(bytes)
    const part = yield* Either.mapLeft(decodePart(bytes), (x) => new NodeFailed({ message: `block ${e.block}: ${x.message}` }))
    const forward = yield* Either.mapLeft(e.model.runner(e.layer, e.expert, part), (why) => new NodeFailed({ message: `block ${e.block} is not ${e.name}: ${why}` }))
    return { model: e.model, layer: e.layer, expert: e.expert, name: e.name, block: e.block, forward } satisfies Fetched
  })
