import { Either } from "effect"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { newEvent, type BlockAppendedData, type NewEvent } from "../../../domain/ledger/events.ts"
import { Streams } from "../../../domain/ledger/streams.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"
import { ModelProjection, GENESIS_REASON, expertsPendingUpdate, pendingExpertUpdates, trainingReason } from "../../../domain/projections/model.ts"
import { decidePublishGenesis, decidePublishSpec, decideRecordTraining } from "../../../domain/projections/model-deciders.ts"
import { ChainProjection, decideGenesis } from "../../../domain/projections/chain.ts"
import { LogDeciderSpec, foldLog, sealLog } from "../../support/decider-spec.ts"
import { makeBlock } from "../../support/ledger.ts"

const spec = LogDeciderSpec(ModelProjection)
const published: readonly [string, NewEvent] = [Streams.chainA, newEvent("ModelSpecPublished", { spec: defaultSpec })]
/** The spec's hash is the hash of the envelope that published it: seq 1, right after genesis. */
const specHash = sealLog([published])[1]!.hash
const payload = (n: number) => new Uint8Array(8).fill(n)
const genesisBlock = (name: string, n = 1) => makeBlock(name, payload(n), [specHash])
const appended = (b: BlockAppendedData): readonly [string, NewEvent] => [Streams.chainB, newEvent("BlockAppended", b)]
const outcome = { steps: 3, corpus: "a".repeat(64), heldOut: "b".repeat(64), trainLossBefore: 2, trainLossAfter: 1, heldOutLossBefore: 2.5, heldOutLossAfter: 1.5 }

describe("publishing the model spec", () => {
  it("publishes it once; the same spec again records nothing; another spec is refused", () => {
    spec.given([]).when((s) => decidePublishSpec(s, defaultSpec)).then([published[1]])
    spec.given([published]).when((s) => decidePublishSpec(s, defaultSpec)).thenNothingHappened()
    spec.given([published]).when((s) => decidePublishSpec(s, { ...defaultSpec, name: "other" })).thenFails("ModelRefused", { kind: "OtherModel" })
  })
})

describe("publishing genesis blocks", () => {
  const e0 = genesisBlock("layer0.expert0")
  const e1 = genesisBlock("layer0.expert1", 2)
  it("appends the parts that have no block yet, and nothing for those that have", () => {
    spec.given([published]).when((s) => decidePublishGenesis(s, [e0, e1])).then([newEvent("BlockAppended", e0), newEvent("BlockAppended", e1)])
    spec.given([published, appended(e0)]).when((s) => decidePublishGenesis(s, [e0, e1])).then([newEvent("BlockAppended", e1)])
    spec.given([published, appended(e0), appended(e1)]).when((s) => decidePublishGenesis(s, [e0, e1])).thenNothingHappened()
  })
  it("needs the spec first, and blocks that depend on it alone", () => {
    spec.given([]).when((s) => decidePublishGenesis(s, [e0])).thenFails("ModelRefused", { kind: "NoSpec" })
    spec.given([published]).when((s) => decidePublishGenesis(s, [makeBlock("layer0.expert0", payload(1))])).thenFails("ModelRefused", { kind: "NotGenesis" })
  })
})

describe("recording a training result", () => {
  const base = genesisBlock("layer0.expert0")
  const better = makeBlock("layer0.expert0", payload(9), [base.hash])
  it("appends the blocks and the ModelTrained in one chain-B decision", () => {
    spec
      .given([published, appended(base)])
      .when((s) => decideRecordTraining(s, [better], outcome))
      .then([newEvent("BlockAppended", better), newEvent("ModelTrained", { ...outcome, blocks: [better.hash] })])
  })
  it("refuses a result trained from a block that is no longer current (stale base)", () => {
    const other = makeBlock("layer0.expert0", payload(7), [base.hash])
    spec.given([published, appended(base), appended(other)]).when((s) => decideRecordTraining(s, [better], outcome)).thenFails("ModelRefused", { kind: "StaleBase" })
    spec.given([published]).when((s) => decideRecordTraining(s, [better], outcome)).thenFails("ModelRefused", { kind: "StaleBase" })
    spec.given([published, appended(base)]).when((s) => decideRecordTraining(s, [], outcome)).thenFails("ModelRefused", { kind: "Empty" })
  })
})

describe("completing expert streams", () => {
  const v1 = genesisBlock("layer1.expert2")
  const v2 = makeBlock("layer1.expert2", payload(5), [v1.hash])
  const trained: readonly [string, NewEvent] = [Streams.chainB, newEvent("ModelTrained", { ...outcome, blocks: [v2.hash] })]
  const updated = (b: BlockAppendedData, previous: string | null, reason: string): readonly [string, NewEvent] => [
    Streams.expert(1, 2),
    newEvent("ExpertUpdated", { name: b.name, block: b.hash, previous, reason })
  ]
  it("derives every missing ExpertUpdated in chain-B order, with the reason the log gives", () => {
    const past = [published, appended(v1), appended(v2), trained]
    spec
      .given(past)
      .when((s) => Either.right(pendingExpertUpdates(s, v1.name)))
      .then([updated(v1, null, GENESIS_REASON)[1], updated(v2, v1.hash, trainingReason({ ...outcome, blocks: [v2.hash] }))[1]])
    const half = foldLog(ModelProjection, sealLog([...past, updated(v1, null, GENESIS_REASON)]))
    expect(pendingExpertUpdates(half, v1.name)).toEqual([updated(v2, v1.hash, trainingReason({ ...outcome, blocks: [v2.hash] }))[1]])
    const done = foldLog(ModelProjection, sealLog([...past, updated(v1, null, GENESIS_REASON), updated(v2, v1.hash, "x")]))
    expect(pendingExpertUpdates(done, v1.name)).toEqual([])
    expect(expertsPendingUpdate(done)).toEqual([])
  })
  it("never asks for updates of parts that are not experts", () => {
    const router = makeBlock("layer0.router", payload(3), [specHash], undefined, "router")
    expect(expertsPendingUpdate(foldLog(ModelProjection, sealLog([published, appended(router)])))).toEqual([])
  })
})

describe("the genesis covenant", () => {
  it("is sealed into an empty log only", () => {
    expect(decideGenesis(ChainProjection.initial()).map((e) => e.type)).toEqual(["GenesisCovenantSealed"])
    expect(decideGenesis(foldLog(ChainProjection, sealLog([])))).toEqual([])
  })
})

describe("model decisions over random histories (property)", () => {
  it("every part's versions form one lineage, and a training result is accepted only on the current base", () => {
    const names = ["layer0.expert0", "layer0.expert1", "layer1.expert0"]
    // A history: each step trains some parts from the version it saw `lag` steps ago (lag > 0: a concurrent, stale run).
    const step = fc.record({ parts: fc.subarray(names, { minLength: 1 }), lag: fc.nat({ max: 2 }), n: fc.nat({ max: 255 }) })
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), (steps) => {
        const past: Array<readonly [string, NewEvent]> = [published]
        for (const n of names) past.push(appended(genesisBlock(n, n.length)))
        const seen: Array<Map<string, string>> = []
        for (const st of steps) {
          const state = foldLog(ModelProjection, sealLog(past))
          seen.push(new Map([...state.current].map(([k, v]) => [k, v.block])))
          const view = seen[Math.max(0, seen.length - 1 - st.lag)]!
          const blocks = st.parts.map((p) => makeBlock(p, payload(st.n), [view.get(p)!]))
          const decision = decideRecordTraining(state, blocks, outcome)
          const stale = st.parts.some((p) => view.get(p) !== state.current.get(p)!.block)
          expect(decision._tag).toBe(stale ? "Left" : "Right")
          if (decision._tag === "Right") for (const e of decision.right) past.push([Streams.chainB, e])
        }
        const final = foldLog(ModelProjection, sealLog(past))
        for (const n of names) {
          const versions = final.history.get(n)!
          versions.slice(1).forEach((v, i) => {
            const block = past.find(([, e]) => e.type === "BlockAppended" && (e.data as BlockAppendedData).hash === v.block)![1].data as BlockAppendedData
            expect(block.dependsOn[0]).toBe(versions[i]!.block)
          })
          expect(final.current.get(n)!.block).toBe(versions[versions.length - 1]!.block)
        }
      }),
      { numRuns: 60 }
    )
  })
})
