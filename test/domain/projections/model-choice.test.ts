import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../../domain/ledger/signing.ts"
import { Streams } from "../../../domain/ledger/streams.ts"
import { BUILTIN_MODEL } from "../../../domain/model/families/imported-spec.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"
import { decideAnnouncement, signAnnouncement } from "../../../domain/network/announcement.ts"
import { chooseModel, modelList, ModelProjection } from "../../../domain/projections/model.ts"
import { decidePublishImported } from "../../../domain/projections/model-deciders.ts"
import { NodesProjection } from "../../../domain/projections/nodes.ts"
import { foldLog, sealLog } from "../../support/decider-spec.ts"
import { tinyQwen3Moe } from "../../support/family-weights.ts"
import { makeBlock } from "../../support/ledger.ts"

const imported = (name: string) => ({ ...tinyQwen3Moe, name, files: { "config.json": sha256Hex(`config of ${name}`) } })
const published = (spec: unknown): readonly [string, NewEvent] => [Streams.chainA, newEvent("ModelSpecPublished", { spec } as never)]

describe("choosing a model by name", () => {
  it("without a name, the one published last; the built-in one as blyan-moe; an unknown name refused, naming those there are", () => {
    const log = [published(defaultSpec), published(imported("qwen-a")), published(imported("qwen-b"))]
    for (let n = 1; n <= log.length; n++) {
      const s = foldLog(ModelProjection, sealLog(log.slice(0, n)))
      const names = [BUILTIN_MODEL, "qwen-a", "qwen-b"].slice(0, n)
      expect(Either.getOrThrow(chooseModel(s)).name).toBe(names.at(-1))
      expect(modelList(s).map((m) => [m.name, m.latest])).toEqual(names.map((name, i) => [name, i === n - 1]))
      for (const name of names) expect(Either.getOrThrow(chooseModel(s, name)).name).toBe(name)
      expect(chooseModel(s, "nope")).toEqual(Either.left(`the ledger holds no model named "nope" (it holds ${names.join(", ")})`))
    }
    expect(Either.getOrThrow(chooseModel(foldLog(ModelProjection, sealLog(log)), BUILTIN_MODEL))).toMatchObject({ kind: "builtin", spec: defaultSpec })
    // An import before the built-in spec: the built-in one is then the latest.
    const later = foldLog(ModelProjection, sealLog([published(imported("qwen-a")), published(defaultSpec)]))
    expect(later.latest).toBe(BUILTIN_MODEL)
    expect(chooseModel(foldLog(ModelProjection, sealLog([])))).toEqual(Either.left("the ledger holds no model yet: run `blyan init`"))
  })

  it("no import may take the built-in model's name", () => {
    const s = foldLog(ModelProjection, sealLog([published(defaultSpec)]))
    const refused = decidePublishImported(s, imported(BUILTIN_MODEL))
    expect(Either.isLeft(refused) && refused.left.message).toBe(`${BUILTIN_MODEL} names the built-in model; import this checkpoint under another name`)
  })
})

describe("a node announcing experts of an imported model", () => {
  const seed = sha256Hex("node n1")
  const node: readonly [string, NewEvent] = [
    Streams.node("n1"),
    newEvent("NodeRegistered", { node: "n1", publicKey: derivePublicHex(seed), keyHash: sha256Hex("key"), device: "cpu", memory: 1, speed: 1 })
  ]
  const specLog = sealLog([published(defaultSpec), published(imported("qwen-a")), node])
  const specHash = specLog[2]!.hash
  const ownBlock = makeBlock("qwen-a/layer0.expert1", new Uint8Array(8).fill(3), [specHash])
  const log = sealLog([published(defaultSpec), published(imported("qwen-a")), node, [Streams.chainB, newEvent("BlockAppended", ownBlock)]])
  const model = foldLog(ModelProjection, log)
  const nodes = foldLog(NodesProjection, log)
  const announce = (hosted: ReadonlyArray<{ layer: number; expert: number; block: string; model?: string }>) =>
    decideAnnouncement(nodes, model, signAnnouncement({ node: "n1", kind: "serving", hosted }, seed))

  it("names the model in its claim; the same block claimed as the built-in model's, or under another model, is refused", () => {
    expect(Either.getOrThrow(announce([{ layer: 0, expert: 1, block: ownBlock.hash, model: "qwen-a" }]))).toEqual([newEvent("NodeExpertsAnnounced", { node: "n1", blocks: [ownBlock.hash] })])
    for (const [claim, why] of [
      [{ layer: 0, expert: 1, block: ownBlock.hash }, "the model has no layer0.expert1"],
      [{ layer: 0, expert: 1, block: ownBlock.hash, model: "qwen-b" }, "the model has no qwen-b/layer0.expert1"],
      [{ layer: 0, expert: 2, block: ownBlock.hash, model: "qwen-a" }, "the model has no qwen-a/layer0.expert2"]
    ] as const) {
      const r = announce([claim])
      expect(Either.isLeft(r) && r.left.message).toBe(`announcement refused: ${why}`)
    }
  })
})
