import { randomBytes } from "node:crypto"
import { Effect, Either, Exit, Layer, Schedule, Scope } from "effect"
import { expect, layer } from "@effect/vitest"
import { serveBlobs } from "../../actors/blob-exchange.ts"
import { askChat, serveChat, type NetworkChatAnswer, type RouterSettings } from "../../actors/chat-service.ts"
import { chat } from "../../actors/chat.ts"
import { startProjector } from "../../actors/projector.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { completeExpertUpdates, signParts } from "../../actors/model-ledger.ts"
import { decideRecordTraining } from "../../domain/projections/model-deciders.ts"
import { contributorSeed } from "../support/ledger.ts"
import { initLedger } from "../../actors/genesis.ts"
import { serveLog } from "../../actors/log-server.ts"
import { serveAnnouncements } from "../../actors/node-admission.ts"
import { runNode, type NodeAgentConfig } from "../../actors/node-agent.ts"
import { registerNode, serveRegistry } from "../../actors/registry.ts"
import { askOwner } from "../../actors/owner-requests.ts"
import { signAnnouncement } from "../../domain/network/announcement.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { BlobStore, type BlobStoreApi } from "../../domain/ports/blob-store.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { ModelRunner, type ModelRunnerApi } from "../../domain/ports/model-runner.ts"
import type { Executor } from "../../domain/ports/executor.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { expertForward } from "../../domain/model/forward.ts"
import { decodePart } from "../../domain/model/safetensors.ts"
import { expertPart } from "../../domain/model/spec.ts"
import type { Part } from "../../domain/model/tensor.ts"
import { decodeExpertRequest, encodeExpertAnswer, rowBytes, rowsOf, splitRows } from "../../domain/network/expert-wire.ts"
import { encodeHeartbeat } from "../../domain/network/heartbeat.ts"
import { bytesDigest, signReceipt, type Receipt } from "../../domain/network/receipts.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { KeysProjection, decideIssueKey, decideRevokeKey } from "../../domain/projections/keys.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { INFERENCE_RATE_PER_ROW } from "../../domain/rewards/inference.ts"
import { logOf } from "../support/log.ts"
import { tempDir } from "../support/tmp.ts"
import { testNodeConfig } from "../support/node-config.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"

const Runtime = Layer.provideMerge(ModelRunnerLive, TestExecutor)

const settings: RouterSettings = { timeoutMs: 2000, attempts: 4, spotCheckRate: 0, staleMs: 2000, banAfter: 3, banMs: 60_000, seed: 1 }
const request = { prompt: "nodes", maxTokens: 10, temperature: 0.8, seed: 4 }

type Owner = { readonly bus: BusApi; readonly events: EventStoreApi; readonly blobs: BlobStoreApi; readonly key: string; readonly runner: ModelRunnerApi }

const issueKey = (key: string) =>
  handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, sha256Hex(key), "node") })

/** The holder of a tiny model's ledger, serving the network on a memory bus, with an API key for nodes. */
const startOwner = (router: Partial<RouterSettings> = {}, bus?: BusApi) =>
  Effect.gen(function* () {
    const o: Owner = {
      bus: bus ?? (yield* makeMemoryBus()),
      events: yield* makeMemoryEventStore(),
      blobs: yield* makeFileBlobStore(tempDir()),
      key: `bly_node_${randomBytes(8).toString("hex")}`,
      runner: yield* ModelRunner
    }
    yield* asOwner(o)(
      Effect.gen(function* () {
        yield* initLedger(tinySpec)
        yield* issueKey(o.key)
        yield* Effect.all([serveLog, serveBlobs, serveRegistry, serveAnnouncements(2000), serveChat({ ...settings, ...router }, yield* startProjector)], { discard: true })
      })
    )
    return o
  })

const asOwner = (o: Owner) => <A, E, R>(eff: Effect.Effect<A, E, R>) =>
  eff.pipe(Effect.provideService(EventStore, o.events), Effect.provideService(BlobStore, o.blobs), Effect.provideService(Bus, o.bus))

const eventually = <A>(eff: Effect.Effect<A, unknown>, ok: (a: A) => boolean) =>
  Effect.repeat(eff, { until: ok, schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo("30 seconds")) })

const logAt = (o: Owner) => logOf(o.events)
const announced = (o: Owner, node: string) => Effect.map(logAt(o), (log) => log.some((e) => e.type === "NodeExpertsAnnounced" && e.stream === Streams.node(node)))

/** A real node agent, with its own replica and blob store, until its scope closes. */
const startNode = (o: Owner, node: string, over: Partial<NodeAgentConfig> = {}, history: ReadonlyArray<Envelope> = []) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const statuses: string[] = []
    const config = testNodeConfig(node, o.key, statuses, over)
    const replica = yield* makeMemoryEventStore(history)
    const blobs = yield* makeFileBlobStore(tempDir())
    const fiber = yield* Effect.forkIn(Effect.either(runNode(config, replica).pipe(Effect.provideService(Bus, o.bus), Effect.provideService(BlobStore, blobs))), scope)
    return { node, scope, fiber, statuses }
  })

/** Answers for every expert on `node`'s own subjects: the honest output passed through `spoil`, signed with `signer`. */
const serveSpoiled = (o: Owner, node: string, signer: string, spoil: (y: Float32Array) => Float32Array) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", ModelProjection).pipe(Effect.provideService(EventStore, o.events))
    const graphs = o.runner.graphs(tinySpec)
    const executor = yield* Effect.context<Executor>()
    const weights = { spec: tinySpec, parts: new Map<string, Part>() }
    for (let layer = 0; layer < tinySpec.layers; layer++)
      for (let expert = 0; expert < tinySpec.experts; expert++) {
        const part = expertPart(layer, expert)
        weights.parts.set(part, Either.getOrThrow(decodePart(yield* o.blobs.get(state.current.get(part)!.payload))))
      }
    for (let layer = 0; layer < tinySpec.layers; layer++)
      yield* o.bus.serve(Subjects.expertsOn(layer, node), (m) =>
        Effect.gen(function* () {
          const { items, body } = Either.getOrThrow(decodeExpertRequest(m.data))
          const inputs = splitRows(body, items, tinySpec.dModel)!
          const receipts: Receipt[] = []
          const outputs: Uint8Array[] = []
          for (const [i, { requestId, expert, block, rows }] of items.entries()) {
            const x = rowsOf(inputs[i]!, rows, tinySpec.dModel)!
            const output = rowBytes(spoil(Float32Array.from(yield* expertForward(graphs, weights, expertPart(layer, expert), x, rows))))
            receipts.push(signReceipt({ requestId, node, layer, expert, block, rows, inputDigest: bytesDigest(inputs[i]!), outputDigest: bytesDigest(output) }, signer))
            outputs.push(output)
          }
          return encodeExpertAnswer(receipts, outputs)
        }).pipe(Effect.orDie, Effect.provide(executor))
      )
    return state
  })

/**
 * A node recorded as registered and serving every expert, that heartbeats and answers with the
 * honest output passed through `spoil`, signed with `signer` (its own key by default): how a
 * dishonest node looks to the router once it is in.
 */
const rogueNode = (o: Owner, node: string, spoil: (y: Float32Array) => Float32Array, signer?: string) =>
  Effect.gen(function* () {
    const seed = randomBytes(32).toString("hex")
    const state = yield* serveSpoiled(o, node, signer ?? seed, spoil)
    const blocks = [...state.current].filter(([n]) => n.includes("expert")).map(([, c]) => c.block)
    yield* o.events.append(
      Streams.node(node),
      [
        newEvent("NodeRegistered", { node, publicKey: derivePublicHex(seed), keyHash: sha256Hex(o.key), device: "cpu", memory: 1, speed: 1 }),
        newEvent("NodeExpertsAnnounced", { node, blocks: blocks.sort() })
      ],
      "any"
    )
    yield* Effect.forkScoped(
      Effect.repeat(o.bus.publish(Subjects.nodeHeartbeat(node), encodeHeartbeat({ node, status: "serving.steady", queue: 0, served: 0 })), Schedule.spaced("50 millis"))
    )
  })

const ask = (o: Owner, req = request) => Effect.either(askChat(req, 60_000).pipe(Effect.provideService(Bus, o.bus)))
const localChat = (o: Owner) => chat(request.prompt, request).pipe(Effect.provideService(EventStore, o.events), Effect.provideService(BlobStore, o.blobs))

/** Base units paid to each node, from the log. */
const paid = (o: Owner) =>
  Effect.map(logAt(o), (log) => {
    const to = new Map<string, bigint>()
    for (const e of log) if (e.type === "RewardPaid") to.set((e.data as { to: string }).to, (to.get((e.data as { to: string }).to) ?? 0n) + BigInt((e.data as { amount: string }).amount))
    return to
  })

layer(Runtime, { timeout: 120_000, excludeTestServices: true })("a network in one process: the ledger's holder, its router and node agents on a memory bus", (it) => {
  it.scoped("nodes register with their measured link, sync, load and announce; chat runs every expert on them with the bytes of local chat; receipts are recorded and each node is paid for its rows; drained nodes retire", () =>
    Effect.gen(function* () {
      const o = yield* startOwner()
      const nodes = [yield* startNode(o, "n1"), yield* startNode(o, "n2")]
      for (const n of nodes) yield* eventually(announced(o, n.node), (a) => a)
      const r = yield* ask(o)
      expect(Either.isRight(r), Either.isLeft(r) ? r.left.message : "").toBe(true)
      const answer = Either.getOrThrow(r) as NetworkChatAnswer
      const local = yield* localChat(o)
      expect(answer.tokens).toEqual(local.tokens)
      for (const e of answer.experts) {
        expect(["n1", "n2"]).toContain(e.node)
        expect(e.receipt).toMatchObject({ node: e.node, layer: e.layer, expert: e.expert, block: e.block, requestId: e.request })
      }
      const log = yield* logAt(o)
      // Each node measured its link through the bus before registering.
      const links = log.filter((e) => e.type === "NodeRegistered").map((e) => (e.data as { bandwidth?: number }).bandwidth)
      expect(links).toHaveLength(2)
      for (const b of links) expect(b).toBeGreaterThan(0)
      const served = log.filter((e) => e.type === "InferenceServed").flatMap((e) => (e.data as { receipts: ReadonlyArray<{ node: string; rows: number; requestId: string }> }).receipts)
      // Every receipt the answer shows is in the record, and the rows recorded are what is paid.
      for (const e of answer.experts) expect(served.map((s) => s.requestId)).toContain(e.request)
      const rows = new Map<string, bigint>()
      for (const s of served) rows.set(s.node, (rows.get(s.node) ?? 0n) + BigInt(s.rows))
      expect(yield* paid(o)).toEqual(new Map([...rows].map(([n, k]) => [n, k * INFERENCE_RATE_PER_ROW])))
      // Drained: each node's lifecycle ends stopped and the ledger records its retirement.
      for (const n of nodes) yield* Scope.close(n.scope, Exit.void)
      for (const n of nodes) expect(n.statuses).toEqual(["syncing", "loading", "serving.steady", "draining", "stopped"])
      const retired = (yield* logAt(o)).filter((e) => e.type === "NodeRetired").map((e) => (e.data as { node: string }).node)
      expect(retired.sort()).toEqual(["n1", "n2"])
    })
  )

  it.scoped("nodes hosting parts of the model serve together; a node whose replica holds another history stops at the first link that breaks, naming its seq", () =>
    Effect.gen(function* () {
      const o = yield* startOwner()
      const half = (keep: (expert: number) => boolean) =>
        Array.from({ length: tinySpec.layers * tinySpec.experts }, (_, i) => ({ layer: Math.floor(i / tinySpec.experts), expert: i % tinySpec.experts })).filter((e) => keep(e.expert))
      yield* startNode(o, "evens", { experts: half((e) => e % 2 === 0) })
      yield* startNode(o, "odds", { experts: half((e) => e % 2 === 1) })
      for (const n of ["evens", "odds"]) yield* eventually(announced(o, n), (a) => a)
      const answer = Either.getOrThrow(yield* ask(o)) as NetworkChatAnswer
      expect(answer.tokens).toEqual((yield* localChat(o)).tokens)
      for (const e of answer.experts) expect(e.node).toBe(e.expert % 2 === 0 ? "evens" : "odds")

      // Another ledger's first events: the same genesis, then other hashes.
      const other = yield* startOwner()
      const foreign = (yield* logAt(other)).slice(0, 5)
      const lost = yield* startNode(o, "lost", {}, foreign)
      const exit = yield* lost.fiber.await
      expect(exit._tag === "Success" && Either.isLeft(exit.value) && exit.value.left.message).toContain("the log served from seq 5 is refused by the replica")
      expect(lost.statuses).toEqual(["syncing", expect.stringMatching(/^failed: .*the log served from seq 5 is refused by the replica/)])
      expect((yield* logAt(o)).some((e) => e.stream === Streams.node("lost") && e.type === "NodeExpertsAnnounced")).toBe(false)
    })
  )

  it.scoped("an ExpertUpdated naming a new block is swapped in while serving: the node fetches and verifies it, announces its new blocks, and chat uses the new weights", () =>
    Effect.gen(function* () {
      const o = yield* startOwner()
      const n = yield* startNode(o, "n1")
      yield* eventually(announced(o, "n1"), (a) => a)
      // A training run's result for an expert the chat uses: new weights, a new block, its ExpertUpdated.
      const first = (Either.getOrThrow(yield* ask(o)) as NetworkChatAnswer).experts.find((e) => e.layer === 1)!
      const part = expertPart(1, first.expert)
      const { state } = yield* foldStream("*", ModelProjection).pipe(Effect.provideService(EventStore, o.events))
      const old = Either.getOrThrow(decodePart(yield* o.blobs.get(state.current.get(part)!.payload)))
      const changed = { ...old, tensors: Object.fromEntries(Object.entries(old.tensors).map(([k, t]) => [k, { ...t, data: Float32Array.from(t.data, (v) => v * 1.5) }])) }
      const blocks = yield* asOwner(o)(signParts([changed], (name) => [state.current.get(name)!.block], contributorSeed(1)))
      const outcome = { steps: 1, corpus: "a".repeat(64), heldOut: null, trainLossBefore: 2, trainLossAfter: 1, heldOutLossBefore: 2, heldOutLossAfter: 1 }
      yield* asOwner(o)(handleCommand({ stream: Streams.chainB, projection: ModelProjection, reads: "log", decide: (s) => decideRecordTraining(s, blocks, outcome) }))
      yield* asOwner(o)(completeExpertUpdates)
      const newBlock = blocks[0]!.hash
      const announcements = Effect.map(logAt(o), (log) => log.filter((e) => e.type === "NodeExpertsAnnounced").map((e) => (e.data as { blocks: ReadonlyArray<string> }).blocks))
      yield* eventually(announcements, (a) => a.length === 2)
      const after = yield* announcements
      expect(after[1]).toContain(newBlock)
      expect(after[1]).not.toContain(state.current.get(part)!.block)
      expect(n.statuses).toEqual(["syncing", "loading", "serving.steady", "serving.swapping", "serving.steady"])
      const answer = Either.getOrThrow(yield* ask(o)) as NetworkChatAnswer
      expect(answer.tokens).toEqual((yield* localChat(o)).tokens)
      const used = answer.experts.filter((e) => e.layer === 1 && e.expert === first.expert)
      expect(used.length).toBeGreaterThan(0)
      for (const e of used) expect(e.receipt?.block).toBe(newBlock)
    })
  )

  it.scoped("a node that returns wrong outputs is caught by spot-checks and banned with the evidence; it earns nothing for them; the answer keeps the honest bytes", () =>
    Effect.gen(function* () {
      const o = yield* startOwner({ spotCheckRate: 1 })
      for (const n of ["n1", "n2"]) yield* eventually(announced(o, (yield* startNode(o, n)).node), (a) => a)
      yield* rogueNode(o, "liar", (y) => y.map((v, i) => (i === 0 ? v + 0.5 : v)))
      const answer = Either.getOrThrow(yield* ask(o)) as NetworkChatAnswer
      expect(answer.tokens).toEqual((yield* localChat(o)).tokens)
      expect(answer.experts.some((e) => e.node === "liar")).toBe(false)
      const bans = (yield* logAt(o)).filter((e) => e.type === "NodeBanned")
      expect(bans.map((e) => e.data)).toEqual([expect.objectContaining({ node: "liar", reason: expect.stringContaining("spot-check of layer") })])
      expect((bans[0]!.data as { until?: number }).until).toBeUndefined()
      expect((bans[0]!.data as { reason: string }).reason).toMatch(/contradicts n[12]'s [0-9a-f]{16}… \(request chat-[0-9a-f]+\.\d+\) and n[12]'s/)
      expect((yield* paid(o)).has("liar")).toBe(false)
    })
  )

  it.scoped("forged receipts, NaN or wrongly shaped outputs are refused naming the node; another replica answers; the refused node is banned for a while after repeated failures and paid nothing", () =>
    Effect.gen(function* () {
      for (const [name, spoil, forged, reason] of [
        ["forger", (y: Float32Array) => y, true, "the receipt's signature is not the node's"],
        ["nan", (y: Float32Array) => y.map((v, i) => (i === 3 ? NaN : v)), false, "finite rows"],
        ["short", (y: Float32Array) => y.subarray(1), false, "finite rows"]
      ] as const) {
        const o = yield* startOwner()
        yield* eventually(announced(o, (yield* startNode(o, "honest")).node), (a) => a)
        yield* rogueNode(o, name, spoil, forged ? randomBytes(32).toString("hex") : undefined)
        const answer = Either.getOrThrow(yield* ask(o)) as NetworkChatAnswer
        expect(answer.tokens).toEqual((yield* localChat(o)).tokens)
        expect(new Set(answer.experts.map((e) => e.node))).toEqual(new Set(["honest"]))
        const log = yield* logAt(o)
        const failures = log.filter((e) => e.type === "InferenceServed").flatMap((e) => (e.data as { failures: ReadonlyArray<{ node: string; reason: string }> }).failures)
        expect(failures.length, name).toBeGreaterThan(0)
        // Each names the node and why; a request already under way when the ban landed is refused for the ban.
        for (const f of failures) expect(f.node).toBe(name)
        expect(failures.filter((f) => f.reason.includes(reason)).length, name).toBeGreaterThanOrEqual(3)
        for (const f of failures) if (!f.reason.includes(reason)) expect(f.reason).toBe(`node ${name} is not a registered, active node`)
        const ban = log.find((e) => e.type === "NodeBanned")
        expect(ban?.data, name).toMatchObject({ node: name, reason: expect.stringContaining("failed 3 expert requests in a row"), until: expect.any(Number) })
        expect([...(yield* paid(o)).keys()]).toEqual(["honest"])
      }
    })
  )

  it.scoped("an unknown or revoked API key, a node announcing blocks whose experts it does not compute, or an oversized message is refused in words; nothing of it is recorded and no balance changes", () =>
    Effect.gen(function* () {
      const o = yield* startOwner({}, yield* makeMemoryBus({ maxPayload: 4096 }))
      const before = (yield* logAt(o)).length
      const unknown = yield* startNode(o, "stranger", { apiKey: "bly_node_unknown" })
      const refused = yield* unknown.fiber.await
      expect(refused._tag === "Success" && Either.isLeft(refused.value) && refused.value.left.message).toContain("registration refused: unknown API key")
      expect(unknown.statuses).toEqual(["failed: registration refused: unknown API key"])

      // Registered for real, but what it computes is not the blocks it names.
      const seed = randomBytes(32).toString("hex")
      const profile = { node: "pretender", publicKey: derivePublicHex(seed), device: "cpu", memory: 1, speed: 1 }
      yield* asOwner(o)(registerNode(profile, o.key, seed, 2000))
      const state = yield* serveSpoiled(o, "pretender", seed, (y) => y.map((v) => v + 0.5))
      const hosted = [...state.current].flatMap(([n, c]) => {
        const m = /^layer(\d+)\.expert(\d+)$/.exec(n)
        return m === null ? [] : [{ layer: Number(m[1]), expert: Number(m[2]), block: c.block }]
      })
      const announced = yield* Effect.either(
        asOwner(o)(askOwner(Subjects.nodeAnnounce, signAnnouncement({ node: "pretender", kind: "serving", hosted }, seed), 2000, (reason) => new Error(reason)))
      )
      expect(Either.isLeft(announced) && announced.left.message).toMatch(/^announcement refused: node pretender's layer0\.expert0 does not compute block [0-9a-f]{16}…: element \d+ differs by/)

      const chatTooLarge = yield* ask(o, { ...request, prompt: "x".repeat(8000) })
      expect(Either.isLeft(chatTooLarge) && chatTooLarge.left.message).toContain("exceeds the bus's 4096-byte limit")

      yield* asOwner(o)(handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideRevokeKey(s, sha256Hex(o.key), "leaked") }))
      const revoked = yield* (yield* startNode(o, "late")).fiber.await
      expect(revoked._tag === "Success" && Either.isLeft(revoked.value) && revoked.value.left.message).toContain("the API key is revoked")
      // Only the pretender's registration and the revocation were recorded.
      expect((yield* logAt(o)).slice(before).map((e) => e.type)).toEqual(["NodeRegistered", "ApiKeyRevoked"])
      expect((yield* paid(o)).size).toBe(0)
    })
  )
})
