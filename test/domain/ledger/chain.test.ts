import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { decodeEvent, envelopeHash, parseEnvelope, prepareEvent, sealBatch, type Envelope, verifyChain as verifyChainOf } from "../../../domain/ledger/envelope.ts"
import { GENESIS_AT, GENESIS_HASH, genesisEnvelope } from "../../../domain/ledger/genesis.ts"
import { replay } from "../../../domain/ledger/audit.ts"
import { canonicalize } from "../../../domain/ledger/jcs.ts"
import type { NewEvent } from "../../../domain/ledger/events.ts"
import { viewLedgerState } from "../../../domain/projections/ledger-state.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { arbitraryLog, testTrust } from "../../support/ledger.ts"

const chainOk = (log: ReadonlyArray<Envelope>): boolean => Either.isRight(verifyChainOf(log))

describe("the genesis covenant", () => {
  it("hashes to the constant every install shares", () => {
    const g = genesisEnvelope()
    expect(g.hash).toBe(GENESIS_HASH)
    expect(g.at).toBe(GENESIS_AT)
    expect(g.prev).toBe("0".repeat(64))
    expect(envelopeHash(g)).toBe(GENESIS_HASH)
  })

  it("is the only thing seq 0 may be, and appears only there", () => {
    const prepared = (stream: string, ev: NewEvent) => Either.getOrThrow(prepareEvent(stream, ev))
    expect(Either.isLeft(sealBatch(undefined, "keys", [prepared("keys", keyIssued(1))], "2026-01-01T00:00:00.000Z"))).toBe(true)
    const g = sealBatch(undefined, "chain-A", [prepared("chain-A", genesisEvent())], "2026-01-01T00:00:00.000Z")
    expect(Either.getOrThrow(g)[0]).toEqual(genesisEnvelope())
    expect(Either.isLeft(sealBatch({ seq: 0, hash: GENESIS_HASH }, "chain-A", [prepared("chain-A", genesisEvent())], "x"))).toBe(true)
  })
})

describe("the hash chain", () => {
  it("links every envelope to the one before (property)", () => {
    fc.assert(
      fc.property(arbitraryLog(), (log) => {
        expect(chainOk(log)).toBe(true)
        expect(replay(log, testTrust).firstBad).toBeUndefined()
      }),
      { numRuns: 40 }
    )
  })

  it("detects any change to any field of any envelope, naming its seq (property)", () => {
    const fields = ["seq", "stream", "type", "version", "at", "data", "prev", "hash"] as const
    const logAndIndex = arbitraryLog(12).chain((log) => fc.tuple(fc.constant(log), fc.integer({ min: 0, max: log.length - 1 })))
    fc.assert(
      fc.property(logAndIndex, fc.constantFrom(...fields), fc.string({ minLength: 1, maxLength: 4 }), ([log, i], field, junk) => {
        const tampered = log.map((e) => ({ ...e }))
        const e = tampered[i]!
        const orig = e[field]
        const changed =
          typeof orig === "number" ? orig + 1 : typeof orig === "string" ? (orig.slice(0, -1) + (orig.endsWith("a") ? "b" : "a")) : { ...(orig as object), [`x${junk}`]: junk }
        ;(e as Record<string, unknown>)[field] = changed
        const r = replay(tampered, testTrust)
        expect(r.firstBad).toBeDefined()
        // A change can only surface at the altered envelope or, for a broken back-pointer, the next one.
        expect(r.firstBad!.seq === i || r.firstBad!.seq === i + 1).toBe(true)
      }),
      { numRuns: 300 }
    )
  })

  it("detects removed, duplicated and reordered envelopes (property)", () => {
    const long = arbitraryLog(20).filter((log) => log.length >= 5)
    fc.assert(
      fc.property(long.chain((log) => fc.tuple(fc.constant(log), fc.integer({ min: 1, max: log.length - 2 }))), ([log, i]) => {
        expect(replay([...log.slice(0, i), ...log.slice(i + 1)], testTrust).firstBad?.seq).toBe(i)
        expect(replay([...log.slice(0, i + 1), log[i]!, ...log.slice(i + 1)], testTrust).firstBad?.seq).toBe(i + 1)
        expect(replay([...log.slice(0, i), log[i + 1]!, log[i]!, ...log.slice(i + 2)], testTrust).firstBad?.seq).toBe(i)
      }),
      { numRuns: 60 }
    )
  })

  it("replaying the same log twice gives identical projections (property)", () => {
    fc.assert(
      fc.property(arbitraryLog(40), (log) => {
        const a = canonicalize(JSON.parse(JSON.stringify(viewLedgerState(replay(log, testTrust).state))))
        const b = canonicalize(JSON.parse(JSON.stringify(viewLedgerState(replay(JSON.parse(JSON.stringify(log)), testTrust).state))))
        expect(a).toBe(b)
      }),
      { numRuns: 15 }
    )
  })
})

describe("malformed events", () => {
  it("are typed errors that name the seq", () => {
    expect(Either.getLeft(parseEnvelope(7, "{not json")).pipe((o) => o._tag === "Some" && o.value.seq)).toBe(7)
    expect(Either.getLeft(parseEnvelope(8, '{"seq":8}')).pipe((o) => o._tag === "Some" && o.value.reason)).toMatch(/bad envelope/)
    const g = genesisEnvelope()
    const unknown = { ...g, seq: 3, type: "Teleported" }
    expect(Either.getLeft(decodeEvent(unknown)).pipe((o) => o._tag === "Some" && o.value.message)).toMatch(/seq 3: unknown event type/)
    const future = { ...g, seq: 4, version: 9 }
    expect(Either.getLeft(decodeEvent(future)).pipe((o) => o._tag === "Some" && o.value.message)).toMatch(/seq 4: .*version 9 is not known/)
    const wrong = { ...g, seq: 5, type: "ApiKeyIssued", data: { keyHash: "zz", role: "node" } }
    expect(Either.getLeft(decodeEvent(wrong)).pipe((o) => o._tag === "Some" && o.value.message)).toMatch(/seq 5: ApiKeyIssued/)
  })

  it("are refused before they are written", () => {
    expect(Either.isLeft(prepareEvent("keys", { type: "ApiKeyIssued", version: 1, data: { keyHash: "a".repeat(64), role: "node", extra: 1 } as never }))).toBe(true)
    expect(Either.isLeft(prepareEvent("Bad Stream", keyIssued(1)))).toBe(true)
    expect(Either.isRight(prepareEvent("keys", keyIssued(1)))).toBe(true)
  })
})
