import { describe, it } from "vitest"
import { KeysProjection, decideIssueKey, decideRevokeKey } from "../../../domain/projections/keys.ts"
import { newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { genesisEnvelope } from "../../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { DeciderSpec } from "../../support/decider-spec.ts"

const envelopeOf = (e: NewEvent, seq: number) => ({ ...genesisEnvelope(), seq, type: e.type, data: e.data })
let seq = 1
const spec = DeciderSpec(KeysProjection.initial, (s, e) => KeysProjection.evolve(s, { type: e.type, data: e.data, envelope: envelopeOf(e, seq++) } as never))

const k1 = sha256Hex("key-1")
const issued = newEvent("ApiKeyIssued", { keyHash: k1, role: "node" })

describe("API keys", () => {
  it("are issued once per hash", () => {
    spec.given([]).when((s) => decideIssueKey(s, k1, "node")).then([issued])
    spec.given([issued]).when((s) => decideIssueKey(s, k1, "admin")).thenFails("KeyRefused", /already issued/)
  })

  it("are revoked once, and only if issued", () => {
    spec.given([issued]).when((s) => decideRevokeKey(s, k1, "leaked")).then([newEvent("ApiKeyRevoked", { keyHash: k1, reason: "leaked" })])
    spec.given([]).when((s) => decideRevokeKey(s, k1)).thenFails("KeyRefused", /no key/)
    spec.given([issued, newEvent("ApiKeyRevoked", { keyHash: k1 })]).when((s) => decideRevokeKey(s, k1)).thenFails("KeyRefused", /already revoked/)
  })
})
