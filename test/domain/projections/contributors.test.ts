import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { Streams } from "../../../domain/ledger/streams.ts"
import { replay } from "../../../domain/ledger/audit.ts"
import { keyPairFromSeed } from "../../../domain/ledger/signing.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { GENESIS_CONTRIBUTOR_SEED } from "../../../domain/model/blocks.ts"
import {
  ContributorsProjection,
  decideRegisterContributor,
  decideRevokeContributor,
  signRegistration,
  signRevocation
} from "../../../domain/projections/contributors.ts"
import { sealLog } from "../../support/decider-spec.ts"
import { contributorSeed, makeBlock, testLedgerKey, testTrust } from "../../support/ledger.ts"

const stranger = keyPairFromSeed(sha256Hex("not the ledger's key"))
const keyOf = (k: number) => keyPairFromSeed(k === 3 ? GENESIS_CONTRIBUTOR_SEED : contributorSeed(k))

type Op = { readonly k: "register" | "revoke" | "block"; readonly who: number; readonly trusted: boolean }
const op = fc.record({ k: fc.constantFrom("register" as const, "revoke" as const, "block" as const), who: fc.nat({ max: 3 }), trusted: fc.boolean() })

describe("known writers", () => {
  it("a replay accepts exactly the histories where every block's key was registered by a trusted ledger key and not revoked before it (property)", () =>
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        // The model: what a registry that never errs allows, op by op; the first op it refuses is where replay must stop.
        const registered = new Map<string, boolean>()
        let firstBad: number | undefined
        const pairs: Array<readonly [string, NewEvent]> = ops.map((o: Op, i) => {
          const key = keyOf(o.who).publicKey
          const registrar = o.trusted ? testLedgerKey : stranger
          const ok =
            o.k === "register"
              ? o.trusted && o.who !== 3 && !registered.has(key)
              : o.k === "revoke"
                ? o.trusted && registered.get(key) === true
                : registered.get(key) === true
          if (!ok) firstBad ??= i + 1
          else if (firstBad === undefined && o.k !== "block") registered.set(key, o.k === "register")
          if (o.k === "register") return [Streams.keys, newEvent("ContributorRegistered", signRegistration(key, registrar.seed))]
          if (o.k === "revoke") return [Streams.keys, newEvent("ContributorRevoked", signRevocation(key, registrar.seed, "r"))]
          return [Streams.chainB, newEvent("BlockAppended", makeBlock("layer0.expert0", new Uint8Array(8).fill(i), undefined, o.who === 3 ? GENESIS_CONTRIBUTOR_SEED : contributorSeed(o.who)))]
        })
        const r = replay(sealLog(pairs), testTrust)
        expect(r.firstBad?.seq).toBe(firstBad)
        if (firstBad === undefined) expect([...r.state.contributors].filter(([, c]) => c.revokedSeq === undefined).map(([k]) => k).sort()).toEqual([...registered].filter(([, on]) => on).map(([k]) => k).sort())
      }),
      { numRuns: 300 }
    ))

  it("a signature is bound to its act and its fields: a registration's cannot pass for a revocation, or for another key", () => {
    const key = keyOf(1).publicKey
    const registration = signRegistration(key, testLedgerKey.seed)
    const base = sealLog([[Streams.keys, newEvent("ContributorRegistered", registration)]])
    expect(replay(base, testTrust).firstBad).toBeUndefined()
    const asRevocation = { publicKey: key, reason: "r", registrar: registration.registrar, signature: registration.signature }
    expect(replay(sealLog([[Streams.keys, newEvent("ContributorRegistered", registration)], [Streams.keys, newEvent("ContributorRevoked", asRevocation)]]), testTrust).firstBad).toMatchObject({
      seq: 2,
      reason: expect.stringContaining("the signature is not")
    })
    const otherKey = { ...registration, publicKey: keyOf(2).publicKey }
    expect(replay(sealLog([[Streams.keys, newEvent("ContributorRegistered", otherKey)]]), testTrust).firstBad?.reason).toContain("the signature is not")
    // Without the ledger key among the trusted ones, even an honest registration is not accepted.
    expect(replay(base).firstBad?.reason).toContain("not a ledger key trusted here (none is")
  })

  it("the deciders refuse what the replay would, and change nothing", () => {
    const s = ContributorsProjection.initial()
    expect(Either.isRight(decideRegisterContributor(s, signRegistration(keyOf(1).publicKey, testLedgerKey.seed)))).toBe(true)
    expect(Either.getLeft(decideRevokeContributor(s, signRevocation(keyOf(1).publicKey, testLedgerKey.seed, "r")))).toMatchObject({ value: { _tag: "ContributorRefused", message: expect.stringContaining("no such contributor") } })
    expect(Either.getLeft(decideRegisterContributor(s, signRegistration(keyOf(3).publicKey, testLedgerKey.seed)))).toMatchObject({ value: { message: expect.stringContaining("genesis key") } })
    expect(s.size).toBe(0)
  })
})
