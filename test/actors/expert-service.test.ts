import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import { expect, layer } from "@effect/vitest"
import { callExpert, callExperts, serveExpert, serveLayer, type ExpertCall, type HostedExpert } from "../../actors/expert-service.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { expertForward } from "../../domain/model/forward.ts"
import { buildModelGraphs } from "../../domain/model/onnx/graphs.ts"
import { expertPart } from "../../domain/model/spec.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../domain/ledger/signing.ts"
import { decodeExpertAnswer, encodeExpertAnswer, rowBytes } from "../../domain/network/expert-wire.ts"
import { signReceipt, bytesDigest } from "../../domain/network/receipts.ts"
import { expertQueue, Subjects } from "../../domain/network/subjects.ts"
import { hostedBuiltin, randomWeights, TestExecutor, tinySpec } from "../domain/model/support.ts"

const graphs = buildModelGraphs(tinySpec)
const weights = randomWeights(tinySpec, 3)
const block = sha256Hex("layer1.expert2 weights")
const hosted: HostedExpert = hostedBuiltin(graphs, weights, 1, 2, block)
const d = tinySpec.dModel
const identity = (node: string) => ({ node, seed: randomBytes(32).toString("hex") })
const rows = 3
const x = Float32Array.from({ length: rows * d }, (_, i) => Math.sin(i) * 0.7)

/** Nodes serving the expert on a memory bus, and a call to it that knows their keys. */
const network = (nodes: ReadonlyArray<{ node: string; seed: string }>) =>
  Effect.gen(function* () {
    const bus = yield* makeMemoryBus()
    for (const id of nodes) yield* serveExpert(hosted, id).pipe(Effect.provideService(Bus, bus))
    const keys = new Map(nodes.map((n) => [n.node, derivePublicHex(n.seed)]))
    const call = (over: Partial<ExpertCall> = {}) =>
      Effect.either(
        callExpert({ requestId: "r1", layer: 1, expert: 2, block, rows, x, width: d, timeoutMs: 3000, publicKeyOf: (n) => keys.get(n), ...over }).pipe(
          Effect.provideService(Bus, bus)
        )
      )
    return { bus, call }
  })

layer(TestExecutor)("experts over the bus", (it) => {
  it.scoped("a replica answers with the expert's exact output and a receipt its node signed; replicas share the requests", () =>
    Effect.gen(function* () {
      const { call } = yield* network([identity("n1"), identity("n2")])
      const local = yield* expertForward(graphs, weights, expertPart(1, 2), x, rows)
      const answered = new Set<string>()
      for (let i = 0; i < 4; i++) {
        const r = yield* call({ requestId: `r${i}` })
        expect(Either.isRight(r)).toBe(true)
        if (Either.isLeft(r)) continue
        expect(Array.from(r.right.y)).toEqual(Array.from(local))
        expect(r.right.receipt).toMatchObject({ requestId: `r${i}`, layer: 1, expert: 2, block, inputDigest: bytesDigest(rowBytes(x)) })
        answered.add(r.right.receipt.node)
      }
      expect([...answered].sort()).toEqual(["n1", "n2"])
    })
  )

  it.scoped("a node refuses another block, NaN input or a wrong shape; the router refuses an unregistered node", () =>
    Effect.gen(function* () {
      const { call } = yield* network([identity("n1")])
      const cases: ReadonlyArray<readonly [Partial<ExpertCall>, string]> = [
        // Replicas of a block share its queue group: a block nobody holds has none.
        [{ block: sha256Hex("other") }, `nobody serves ${Subjects.expertForward(sha256Hex("other"))}`],
        [{ x: Float32Array.from(x, (v, i) => (i === 5 ? NaN : v)) }, `the node refused: the input is not ${rows} finite rows of ${d} float32`],
        [{ rows: 2 }, `the node refused: the input is not 2 finite rows of ${d} float32`],
        [{ publicKeyOf: () => undefined }, "node n1 is not a registered, active node"]
      ]
      for (const [over, message] of cases) {
        const r = yield* call(over)
        expect(Either.isLeft(r) && r.left.message).toBe(message)
      }
    })
  )

  it.scoped("a node asked on its own subject answers several experts of a layer in one request, one receipt each, and refuses an expert it does not serve", () =>
    Effect.gen(function* () {
      const bus = yield* makeMemoryBus()
      const id = identity("n1")
      const other: HostedExpert = hostedBuiltin(graphs, weights, 1, 0, sha256Hex("layer1.expert0 weights"))
      yield* serveLayer(1, (b) => [hosted, other].find((h) => h.block === b), id).pipe(Effect.provideService(Bus, bus))
      const x0 = Float32Array.from({ length: d }, (_, i) => Math.cos(i))
      const items = [
        { requestId: "a", expert: 2, block, rows, x },
        { requestId: "b", expert: 0, block: other.block, rows: 1, x: x0 }
      ]
      const call = (asked: typeof items) =>
        Effect.either(callExperts({ layer: 1, items: asked, width: d, timeoutMs: 3000, publicKeyOf: () => derivePublicHex(id.seed), node: "n1" }).pipe(Effect.provideService(Bus, bus)))
      const r = yield* call(items)
      expect(Either.isRight(r)).toBe(true)
      if (Either.isLeft(r)) return
      expect(Array.from(r.right[0]!.y)).toEqual(Array.from(yield* expertForward(graphs, weights, expertPart(1, 2), x, rows)))
      expect(Array.from(r.right[1]!.y)).toEqual(Array.from(yield* expertForward(graphs, weights, expertPart(1, 0), x0, 1)))
      expect(r.right.map((a) => [a.receipt.requestId, a.receipt.expert, a.receipt.rows, a.receipt.node])).toEqual([["a", 2, rows, "n1"], ["b", 0, 1, "n1"]])
      const refused = yield* call([items[0]!, { ...items[1]!, expert: 3 }])
      expect(Either.isLeft(refused) && refused.left.message).toBe(`the node refused: this node does not serve block ${other.block} as layer1.expert3`)
      const unknown = yield* call([items[0]!, { ...items[1]!, block: sha256Hex("another block") }])
      expect(Either.isLeft(unknown) && unknown.left.message).toBe(`the node refused: this node does not serve block ${sha256Hex("another block")} as layer1.expert0`)
    })
  )

  /** A node of the test's own on `bus`, answering with what `forge` makes of an honest answer. */
  const dishonest = (bus: BusApi, forge: (honest: { receipt: ReturnType<typeof signReceipt>; output: Uint8Array }, seed: string) => Uint8Array) =>
    Effect.gen(function* () {
      const id = identity("n9")
      const honest = yield* makeMemoryBus()
      yield* serveExpert(hosted, id).pipe(Effect.provideService(Bus, honest))
      yield* bus.serve(
        Subjects.expertForward(block),
        (req) =>
          Effect.map(
            honest.request(Subjects.expertForward(block), req.data, { timeoutMs: 3000 }),
            (a) => {
              const { receipts, body } = Either.getOrThrow(decodeExpertAnswer(a))
              return forge({ receipt: receipts[0]!, output: body }, id.seed)
            }
          ).pipe(Effect.orDie),
        { queue: expertQueue(block) }
      )
      return id
    })

  it.scoped("the router refuses a forged or replayed receipt, a wrong output, NaN or a wrong shape, naming the node", () =>
    Effect.gen(function* () {
      const forgeries: ReadonlyArray<readonly [string, (h: { receipt: ReturnType<typeof signReceipt>; output: Uint8Array }, seed: string) => Uint8Array, string]> = [
        ["another key's signature", (h) => encodeExpertAnswer([signReceipt(h.receipt, randomBytes(32).toString("hex"))], [h.output]), "the receipt's signature is not the node's"],
        ["a receipt of another request", (h, seed) => encodeExpertAnswer([signReceipt({ ...h.receipt, requestId: "old" }, seed)], [h.output]), "the receipt names requestId old, not r1"],
        [
          "an altered output",
          (h) => {
            const out = h.output.slice()
            out[0]! ^= 1
            return encodeExpertAnswer([h.receipt], [out])
          },
          "the receipt names outputDigest"
        ],
        ["a NaN output", (h, seed) => {
          const out = rowBytes(Float32Array.from({ length: rows * d }, (_, i) => (i === 0 ? NaN : 0)))
          return encodeExpertAnswer([signReceipt({ ...h.receipt, outputDigest: bytesDigest(out) }, seed)], [out])
        }, `the output is not ${rows} finite rows of ${d} float32`],
        ["a short output", (h, seed) => {
          const out = h.output.subarray(0, 8)
          return encodeExpertAnswer([signReceipt({ ...h.receipt, outputDigest: bytesDigest(out) }, seed)], [out])
        }, `the output is not ${rows} finite rows of ${d} float32`]
      ]
      for (const [, forge, message] of forgeries) {
        const bus = yield* makeMemoryBus()
        const id = yield* dishonest(bus, forge)
        const r = yield* Effect.either(
          callExpert({ requestId: "r1", layer: 1, expert: 2, block, rows, x, width: d, timeoutMs: 3000, publicKeyOf: (n) => (n === id.node ? derivePublicHex(id.seed) : undefined) }).pipe(
            Effect.provideService(Bus, bus)
          )
        )
        expect(Either.isLeft(r) && r.left.message).toContain(message)
        expect(Either.isLeft(r) && r.left._tag === "ExpertAnswerRefused" && r.left.node).toBe("n9")
      }
      // The honest node's answer, relayed untouched, is accepted: the forgeries above are what failed.
      const bus = yield* makeMemoryBus()
      const id = yield* dishonest(bus, (h) => encodeExpertAnswer([h.receipt], [h.output]))
      const ok = yield* Effect.either(
        callExpert({ requestId: "r1", layer: 1, expert: 2, block, rows, x, width: d, timeoutMs: 3000, publicKeyOf: () => derivePublicHex(id.seed) }).pipe(Effect.provideService(Bus, bus))
      )
      expect(Either.isRight(ok)).toBe(true)
    })
  )
})
