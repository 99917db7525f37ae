import * as fs from "node:fs"
import { Effect, Either } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { Catalog, eventTypes, newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { decodeEvent, prepareEvent, seal, type Envelope } from "../../../domain/ledger/envelope.ts"
import { streamKind } from "../../../domain/ledger/streams.ts"
import { replay } from "../../../domain/ledger/audit.ts"
import { encodeAppend } from "../../../adapters/eventstore/file-format.ts"
import { eventsDir, segmentPath } from "../../../adapters/eventstore/file.ts"
import { auditLedger } from "../../../actors/auditor.ts"
import { foldStream } from "../../../actors/command.ts"
import { ModelProjection, trainingReason } from "../../../domain/projections/model.ts"
import { ledgerLayer } from "../../../infra/ledger.ts"
import { BlobStore } from "../../../domain/ports/blob-store.ts"
import { initPart } from "../../../domain/model/init.ts"
import { encodePart } from "../../../domain/model/safetensors.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"
import { sealLog } from "../../support/decider-spec.ts"
import { GENESIS_CONTRIBUTOR_SEED } from "../../../domain/model/blocks.ts"
import { makeBlock } from "../../support/ledger.ts"
import { tempDir } from "../../support/tmp.ts"

/** One stream name of every kind the log knows. */
const streams = ["chain-A", "chain-B", "expert-0.1", "round-r1", "node-n1", "rewards", "inference", "epoch-E1", "keys"]

/** Append `raw` envelopes (already sealed, any version) after `log`, relinking each to the chain. */
const extend = (log: ReadonlyArray<Envelope>, raw: ReadonlyArray<Omit<Envelope, "seq" | "prev" | "hash">>): Envelope[] => {
  const out = [...log]
  for (const r of raw) {
    const head = out[out.length - 1]!
    out.push(seal({ ...r, seq: head.seq + 1, prev: head.hash }))
  }
  return out
}

describe("the catalog binds each event type to its streams", () => {
  it("refuses an event in a stream its type does not belong to, naming both", () => {
    const frozen = newEvent("PlanFrozen", { planId: "p1", epoch: "E1", round: "round_0" })
    const refused = prepareEvent("rewards", frozen)
    expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "InvalidEvent", stream: "rewards", type: "PlanFrozen" })
    expect(Either.isLeft(refused) && refused.left.message).toMatch(/PlanFrozen belongs in chain-A, not rewards/)
    expect(Either.isRight(prepareEvent("chain-A", frozen))).toBe(true)
  })

  it("accepts a type in a stream exactly when the stream's kind is bound to it (property)", () => {
    const sample: Record<string, NewEvent> = {
      ApiKeyIssued: newEvent("ApiKeyIssued", { keyHash: "a".repeat(64), role: "node" }),
      NodeRetired: newEvent("NodeRetired", { node: "n1" }),
      PlanFrozen: newEvent("PlanFrozen", { planId: "p1", epoch: "E1", round: "r" }),
      TransferMade: newEvent("TransferMade", { from: "a", to: "b", amount: "1", nonce: 1, signature: "0".repeat(128) }),
      FallbackActivated: newEvent("FallbackActivated", { epoch: "E1", round: "r", reason: "x" }),
      StageReassigned: newEvent("StageReassigned", { epoch: "E1", round: "r", stage: 1, from: "n1", to: "n3" }),
      ExpertUpdated: newEvent("ExpertUpdated", { name: "layer0.expert1", block: "b".repeat(64), previous: null, reason: "x" }),
      ContributionRejected: newEvent("ContributionRejected", { round: "r", contribution: "c", reason: "x" })
    }
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(sample)), fc.constantFrom(...streams), (type, stream) => {
        const bound = (Catalog[type as keyof typeof Catalog].streams as ReadonlyArray<string>).includes(streamKind(stream)!)
        expect(Either.isRight(prepareEvent(stream, sample[type]!))).toBe(bound)
      })
    )
  })

  it("binds every type to at least one kind of stream", () => {
    for (const t of eventTypes) expect(Catalog[t].streams.length, t).toBeGreaterThan(0)
  })

  it("makes replay (and so audit) name the seq of an event found in the wrong stream", () => {
    const log = extend(sealLog([["keys", newEvent("ApiKeyIssued", { keyHash: "c".repeat(64), role: "node" })]]), [
      { stream: "rewards", type: "PlanFrozen", version: 1, at: "2026-01-01T00:00:00.000Z", data: { planId: "p1", epoch: "E1", round: "r" } }
    ])
    const r = replay(log)
    expect(r.firstBad).toEqual({ seq: 2, reason: "PlanFrozen belongs in chain-A, not rewards" })
  })
})

describe("upcasting", () => {
  const v1Trained = (blocks: ReadonlyArray<string>) => ({
    steps: 5,
    corpus: "d".repeat(64),
    trainLossBefore: 3,
    trainLossAfter: 2,
    heldOutLossBefore: 3.5,
    heldOutLossAfter: 2.5,
    blocks
  })

  it("reads a stored older version through its upcasters, and refuses versions that never existed", () => {
    const log = extend(sealLog([]), [{ stream: "chain-A", type: "ModelTrained", version: 1, at: "2026-01-01T00:00:00.000Z", data: v1Trained([]) }])
    const decoded = Either.getOrThrow(decodeEvent(log[1]!))
    expect(decoded.data).toEqual({ ...v1Trained([]), heldOut: null })
    expect(Catalog.ModelTrained.version).toBe(2)
    for (const version of [3, 7]) expect(Either.isLeft(decodeEvent(seal({ ...log[1]!, version })))).toBe(true)
    // The binding is per version: v2 lives on chain B, so a v1 on chain B (or a v2 on chain A) is refused.
    expect(Either.isLeft(decodeEvent(seal({ ...log[1]!, stream: "chain-B" })))).toBe(true)
  })

  it.scoped("a file ledger written with a v1 event still audits and projects after the schema moved to v2", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const base = sealLog([["chain-A", newEvent("ModelSpecPublished", { spec: defaultSpec })]])
      const specHash = base[1]!.hash
      // A block on the spec holds the spec's seeded weights (audit re-derives them).
      const payload = encodePart(initPart(defaultSpec, "layer0.expert0"))
      const block = makeBlock("layer0.expert0", payload, [specHash], GENESIS_CONTRIBUTOR_SEED)
      const withBlock = extend(base, [{ stream: "chain-B", type: "BlockAppended", version: 1, at: "2026-01-01T00:00:01.000Z", data: block }])
      const log = extend(withBlock, [{ stream: "chain-A", type: "ModelTrained", version: 1, at: "2026-01-01T00:00:02.000Z", data: v1Trained([block.hash]) }])
      fs.mkdirSync(eventsDir(dir), { recursive: true })
      fs.writeFileSync(segmentPath(dir), Buffer.concat(log.flatMap((e) => encodeAppend([e]))))
      const ledger = ledgerLayer({ scheme: "file", dir })
      yield* Effect.provide(Effect.flatMap(BlobStore, (b) => b.put(payload)), ledger)
      const report = yield* Effect.provide(auditLedger(), ledger)
      expect(report.replay.firstBad).toBeUndefined()
      expect(report.replay.events).toBe(log.length)
      const { state } = yield* Effect.provide(foldStream("*", ModelProjection), ledger)
      expect(state.history.get("layer0.expert0")![0]!.reason).toBe(trainingReason({ ...v1Trained([block.hash]), heldOut: null }))
      // The stored bytes are what the hash covers: they were never rewritten.
      expect(fs.readFileSync(segmentPath(dir)).includes(Buffer.from('"version":1'))).toBe(true)
    })
  )
})
