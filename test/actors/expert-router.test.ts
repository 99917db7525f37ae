import { randomBytes } from "node:crypto"
import { Effect, Either, Exit, Scope } from "effect"
import { expect, layer } from "@effect/vitest"
import { remoteExperts } from "../../actors/expert-router.ts"
import { serveExpert, serveLayer } from "../../actors/expert-service.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import type { ExpertCompute } from "../../domain/model/forward.ts"
import { generate } from "../../domain/model/generate.ts"
import { buildModelGraphs } from "../../domain/model/onnx/graphs.ts"
import { expertPart } from "../../domain/model/spec.ts"
import type { NodeEntry } from "../../domain/projections/nodes.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../domain/ledger/signing.ts"
import { encodeExpertRefusal } from "../../domain/network/expert-wire.ts"
import { expertQueue, Subjects } from "../../domain/network/subjects.ts"
import { hostedBuiltin, randomWeights, TestExecutor, tinySpec } from "../domain/model/support.ts"

const graphs = buildModelGraphs(tinySpec)
const weights = randomWeights(tinySpec, 11, 0.6)
const blockOf = (layer: number, expert: number) => sha256Hex(`block of ${expertPart(layer, expert)}`)
const prompt = new TextEncoder().encode("ledger")
const options = { maxTokens: 12, temperature: 0.8, seed: 5 }

const allBlocks = Array.from({ length: tinySpec.layers * tinySpec.experts }, (_, i) => blockOf(Math.floor(i / tinySpec.experts), i % tinySpec.experts))

/** A node serving every expert of the model on `bus`, in a scope of its own (closing it takes the node away). */
const startNode = (bus: BusApi, node: string) =>
  Effect.gen(function* () {
    const seed = randomBytes(32).toString("hex")
    const scope = yield* Scope.make()
    const hosted = (layer: number, expert: number) => hostedBuiltin(graphs, weights, layer, expert, blockOf(layer, expert))
    const byBlock = new Map(allBlocks.map((b, i) => [b, hosted(Math.floor(i / tinySpec.experts), i % tinySpec.experts)]))
    for (let layer = 0; layer < tinySpec.layers; layer++) {
      yield* serveLayer(layer, (block) => byBlock.get(block), { node, seed }).pipe(Effect.provideService(Bus, bus), Scope.extend(scope))
      for (let expert = 0; expert < tinySpec.experts; expert++) yield* serveExpert(hosted(layer, expert), { node, seed }).pipe(Effect.provideService(Bus, bus), Scope.extend(scope))
    }
    return { node, publicKey: derivePublicHex(seed), scope }
  })


/** The registry entry of a node serving every expert. */
const entry = (node: string, publicKey: string): NodeEntry => ({
  node, publicKey, device: "cpu", memory: 1e9, speed: 1, bandwidth: undefined, status: "active", bannedUntil: undefined, banReason: undefined, blocks: allBlocks, served: 0, rows: 0, failures: 0, earned: "0"
})

/** Experts over `bus`, with `keys`' nodes registered; `live`: which of them heartbeat (none: the queue groups choose). */
const remote = (bus: BusApi, keys: ReadonlyMap<string, string>, live: ReadonlyArray<string> = []) => {
  let n = 0
  const nodes = new Map([...keys].map(([node, key]) => [node, entry(node, key)]))
  return remoteExperts(bus, {
    blockOf,
    nodes: () => nodes,
    live: new Map(live.map((node) => [node, { status: "serving.steady", queue: 0, at: 0 }])),
    outstanding: new Map(),
    now: () => 0,
    staleMs: 1000,
    width: tinySpec.dModel,
    timeoutMs: 2000,
    attempts: 3,
    hedgeAfterMs: () => 1000,
    onLatency: () => undefined,
    requestId: () => `q${n++}`,
    spotCheck: () => false,
    onAccepted: () => Effect.void,
    onFailed: () => Effect.void,
    onCheated: () => Effect.void
  })
}

const nodesOf = (steps: ReadonlyArray<{ experts: ReadonlyArray<ReadonlyArray<{ served?: { node: string } }>> }>) => steps.map((s) => [...new Set(s.experts.flat().map((e) => e.served?.node))].sort())

layer(TestExecutor)("generation with experts on nodes over the bus", (it) => {
  it.scoped("gives the bytes of local generation, every expert answer attributed to the node that ran it", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const nodes = [yield* startNode(bus, "n1"), yield* startNode(bus, "n2")]
      const local = yield* generate(graphs, weights, prompt, options)
      const distributed = yield* generate(graphs, weights, prompt, options, remote(bus, new Map(nodes.map((n) => [n.node, n.publicKey]))))
      expect(Array.from(distributed.tokens)).toEqual(Array.from(local.tokens))
      expect(distributed.steps.map((s) => s.experts.map((l) => l.map((e) => e.expert)))).toEqual(local.steps.map((s) => s.experts.map((l) => l.map((e) => e.expert))))
      for (const names of nodesOf(distributed.steps)) for (const name of names) expect(["n1", "n2"]).toContain(name)
      expect(new Set(nodesOf(distributed.steps).flat())).toEqual(new Set(["n1", "n2"]))
    })
  )

  it.scoped("with the nodes' heartbeats known, a layer's experts go to the least loaded node in one request", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const nodes = [yield* startNode(bus, "n1"), yield* startNode(bus, "n2")]
      const subjects: string[] = []
      const watched: BusApi = { ...bus, request: (subject, data, o) => Effect.zipRight(Effect.sync(() => subjects.push(subject)), bus.request(subject, data, o)) }
      const inner = remote(watched, new Map(nodes.map((n) => [n.node, n.publicKey])), ["n1", "n2"])
      const layers: number[] = []
      const counting: ExpertCompute<unknown> = (l, work) => Effect.zipRight(Effect.sync(() => layers.push(l)), inner(l, work))
      const local = yield* generate(graphs, weights, prompt, options)
      const distributed = yield* generate(graphs, weights, prompt, options, counting)
      expect(Array.from(distributed.tokens)).toEqual(Array.from(local.tokens))
      expect(subjects).toEqual(layers.map((l) => expect.stringMatching(new RegExp(`^${Subjects.expertsOn(l, "n").slice(0, -1)}n[12]$`))))
      // Every token of the prompt asks for its top-k: several experts in one request.
      expect(distributed.steps[0]!.experts.some((perLayer) => perLayer.length > 1)).toBe(true)
    })
  )

  it.scoped("a node that leaves mid-generation, or one that refuses, is replaced by another replica: the same bytes, attributed to who answered", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const [a, b] = [yield* startNode(bus, "n1"), yield* startNode(bus, "n2")]
      // A third member of every queue group that refuses every request.
      for (let layer = 0; layer < tinySpec.layers; layer++)
        for (let expert = 0; expert < tinySpec.experts; expert++)
          yield* bus.serve(Subjects.expertForward(blockOf(layer, expert)), () => Effect.succeed(encodeExpertRefusal("out of memory")), { queue: expertQueue(blockOf(layer, expert)) })
      const keys = new Map([a, b].map((n) => [n.node, n.publicKey]))
      const inner = remote(bus, keys)
      let calls = 0
      // n1 leaves after the first few expert calls.
      const leaving: ExpertCompute<unknown> = (l, work) => Effect.zipRight(++calls === 10 ? Scope.close(a.scope, Exit.void) : Effect.void, inner(l, work))
      const local = yield* generate(graphs, weights, prompt, options)
      const r = yield* Effect.either(generate(graphs, weights, prompt, options, leaving))
      expect(Either.isRight(r)).toBe(true)
      if (Either.isLeft(r)) return
      expect(Array.from(r.right.tokens)).toEqual(Array.from(local.tokens))
      const attributed = nodesOf(r.right.steps)
      expect(attributed[0]).toContain("n1")
      expect(attributed.at(-1)).toEqual([b.node])
    })
  )
})
