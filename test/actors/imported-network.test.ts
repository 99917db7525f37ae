import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { Effect, Either, Fiber, Layer } from "effect"
import { expect, layer } from "@effect/vitest"
import { serveBlobs } from "../../actors/blob-exchange.ts"
import { askChat, serveChat, type NetworkChatAnswer, type RouterSettings } from "../../actors/chat-service.ts"
import { chat } from "../../actors/chat.ts"
import { importCheckpoint } from "../../actors/checkpoint-import.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { registerContributor } from "../../actors/contributors.ts"
import { initLedger } from "../../actors/genesis.ts"
import { serveLog } from "../../actors/log-server.ts"
import { serveAnnouncements } from "../../actors/node-admission.ts"
import { runNode, type NodeAgentConfig } from "../../actors/node-agent.ts"
import { startProjector } from "../../actors/projector.ts"
import { serveRegistry } from "../../actors/registry.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { openHfCheckpoint } from "../../adapters/checkpoint/hf-directory.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { BUILTIN_MODEL } from "../../domain/model/families/imported-spec.ts"
import type { Receipt } from "../../domain/network/receipts.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { KeysProjection, decideIssueKey } from "../../domain/projections/keys.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { tinyMixtralConfig, tinyQwen3MoeConfig } from "../support/family-weights.ts"
import { writeHfCheckpoint } from "../support/hf-checkpoint.ts"
import { contributorSeed, testLedgerKey } from "../support/ledger.ts"
import { logOf } from "../support/log.ts"
import { tempDir } from "../support/tmp.ts"
import { testNodeConfig } from "../support/node-config.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"

const Runtime = Layer.provideMerge(ModelRunnerLive, TestExecutor)
const settings: RouterSettings = { timeoutMs: 5000, attempts: 4, spotCheckRate: 0, staleMs: 5000, banAfter: 3, banMs: 60_000, seed: 1 }
const options = { maxTokens: 6, temperature: 0.7, seed: 9 }
const prompt = "the theater"

/**
 * The holder of a ledger with the built-in model and two imported ones (Qwen3-MoE in f16 over two
 * shards, then Mixtral in bf16, the latest), serving the network on a memory bus.
 */
const startOwner = Effect.gen(function* () {
  const bus = yield* makeMemoryBus()
  const events = yield* makeMemoryEventStore()
  const blobs = yield* makeFileBlobStore(tempDir())
  const key = `bly_node_${randomBytes(8).toString("hex")}`
  const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(Bus, bus))
  const root = tempDir("blyan-imported-network-")
  const signer = { seed: contributorSeed(1) }
  yield* on(
    Effect.gen(function* () {
      yield* initLedger(tinySpec)
      yield* registerContributor(keyPairFromSeed(signer.seed).publicKey, testLedgerKey)
      for (const [name, config, dtype] of [["tiny-qwen", tinyQwen3MoeConfig, "F16"], ["tiny-mixtral", tinyMixtralConfig, "BF16"]] as const) {
        const c = writeHfCheckpoint(path.join(root, name), config, { dtype, shards: 2 })
        yield* Effect.scoped(Effect.flatMap(openHfCheckpoint(c.dir), (source) => importCheckpoint(source, name, signer)))
      }
      yield* handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, sha256Hex(key), "node") })
      yield* Effect.all([serveLog, serveBlobs, serveRegistry, serveAnnouncements(5000), serveChat(settings, yield* startProjector)], { discard: true })
    })
  )
  return { bus, events, blobs, key, on }
})
type Owner = Effect.Effect.Success<typeof startOwner>

const startNode = (o: Owner, node: string, models: NodeAgentConfig["models"]) =>
  Effect.gen(function* () {
    const statuses: string[] = []
    const config = testNodeConfig(node, o.key, statuses, { models, timeoutMs: 5000 })
    const fiber = yield* Effect.forkScoped(Effect.either(runNode(config, yield* makeMemoryEventStore()).pipe(Effect.provideService(Bus, o.bus), Effect.provideService(BlobStore, yield* makeFileBlobStore(tempDir())))))
    return { node, fiber, statuses }
  })

/** The blocks a node's latest announcement recorded, once it has one (within 60 s). */
const announcedBlocks = (o: Owner, node: string) =>
  Effect.gen(function* () {
    for (let tries = 0; tries < 3000; tries++) {
      const found = (yield* logOf(o.events)).filter((e) => e.type === "NodeExpertsAnnounced" && e.stream === Streams.node(node))
      if (found.length > 0) return new Set((found.at(-1)!.data as { blocks: ReadonlyArray<string> }).blocks)
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(`node ${node} announced nothing`)
  })

const ask = (o: Owner, model?: string) => Effect.either(askChat({ prompt, ...options, ...(model === undefined ? {} : { model }) }, 60_000).pipe(Effect.provideService(Bus, o.bus)))

layer(Runtime, { timeout: 120_000, excludeTestServices: true })("imported models served by nodes", (it) => {
  it.scoped("nodes host the experts of imported models; the router answers with the model a chat names (the latest by default), the tokens of local chat, each expert attributed to its node and receipt", () =>
    Effect.gen(function* () {
      const o = yield* startOwner
      const { state } = yield* o.on(foldStream("*", ModelProjection))
      const expertBlocks = (prefix: string) => new Set([...state.current].filter(([n]) => n.startsWith(prefix) && n.includes(".expert")).map(([, c]) => c.block))
      const [qwen, mixtral, builtin] = [expertBlocks("tiny-qwen/"), expertBlocks("tiny-mixtral/"), expertBlocks("layer")]
      // n1 hosts one imported model; n2 every model on the ledger.
      const n1 = yield* startNode(o, "n1", ["tiny-qwen"])
      const n2 = yield* startNode(o, "n2", "every")
      expect(yield* announcedBlocks(o, "n1")).toEqual(qwen)
      expect(yield* announcedBlocks(o, "n2")).toEqual(new Set([...builtin, ...qwen, ...mixtral]))

      const local = (model?: string) => o.on(chat(prompt, options, model))
      for (const [model, blocks, nodes] of [["tiny-qwen", qwen, ["n1", "n2"]], [undefined, mixtral, ["n2"]], [BUILTIN_MODEL, builtin, ["n2"]]] as const) {
        const r = yield* ask(o, model)
        expect(Either.isRight(r), Either.isLeft(r) ? r.left.message : "").toBe(true)
        const answer = Either.getOrThrow(r) as NetworkChatAnswer
        const here = yield* local(model)
        expect(answer.model).toBe(model ?? "tiny-mixtral")
        expect(answer.tokens).toEqual(here.tokens)
        expect(answer.text).toBe(here.text)
        expect(answer.experts.map((e) => [e.token, e.layer, e.expert, e.block])).toEqual(here.experts.map((e) => [e.token, e.layer, e.expert, e.block]))
        for (const e of answer.experts) {
          expect(blocks.has(e.block)).toBe(true)
          expect(nodes).toContain(e.node)
          expect(e.receipt).toMatchObject({ node: e.node, layer: e.layer, expert: e.expert, block: e.block, requestId: e.request })
        }
        const served = (yield* logOf(o.events)).filter((e) => e.type === "InferenceServed" && (e.data as { request: string }).request === answer.request)
        const receipts = served.flatMap((e) => (e.data as { receipts: ReadonlyArray<Receipt> }).receipts)
        for (const e of answer.experts) expect(receipts.map((x) => x.requestId)).toContain(e.request)
      }

      const unknown = yield* ask(o, "nope")
      expect(Either.isLeft(unknown) && unknown.left.message).toBe(`the ledger holds no model named "nope" (it holds ${BUILTIN_MODEL}, tiny-qwen, tiny-mixtral)`)
      for (const n of [n1, n2]) expect(n.statuses).toContain("serving.steady")
    })
  )

  it.scoped("a node asked to host a model the ledger does not hold stops, naming the models it does hold", () =>
    Effect.gen(function* () {
      const o = yield* startOwner
      const n = yield* startNode(o, "n3", ["tiny-llama"])
      const result = yield* Fiber.join(n.fiber)
      expect(Either.isLeft(result) && result.left.message).toBe(`node n3: the ledger holds no model named "tiny-llama" (it holds ${BUILTIN_MODEL}, tiny-qwen, tiny-mixtral)`)
      expect(n.statuses.at(-1)).toBe(`failed: the ledger holds no model named "tiny-llama" (it holds ${BUILTIN_MODEL}, tiny-qwen, tiny-mixtral)`)
    })
  )
})
