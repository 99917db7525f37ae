/**
 * Known writers: the contributor keys a ledger accepts blocks from. A ledger key (the key that
 * signs the log's tree heads) registers a contributor's public key, and may revoke it; both acts
 * are signed by that key, so whoever can write the log's files still cannot make their own key a
 * contributor. A block is accepted only from a key registered and not revoked at its seq, or from
 * the well-known genesis key for a block holding the spec's seeded genesis weights.
 */
import { Either, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { newEvent, type EventData, type NewEvent } from "../ledger/events.ts"
import { signHex, verifyHex, keyPairFromSeed } from "../ledger/signing.ts"
import { GENESIS_CONTRIBUTOR_SEED } from "../model/blocks.ts"
import type { Projection } from "./projection.ts"
import { schemaCodec } from "./state-codec.ts"

export type Contributor = { readonly label?: string; readonly registrar: string; readonly registeredSeq: number; revokedSeq?: number }
export type ContributorsState = Map<string, Contributor>

const ContributorsStateSchema = Schema.Map({
  key: Schema.String,
  value: Schema.mutable(Schema.Struct({ label: Schema.optional(Schema.String), registrar: Schema.String, registeredSeq: Schema.Number, revokedSeq: Schema.optional(Schema.Number) }))
})

export const ContributorsProjection: Projection<ContributorsState, unknown> = {
  name: "contributors",
  initial: () => new Map(),
  evolve: (s, e) => {
    if (e.type === "ContributorRegistered")
      s.set(e.data.publicKey, { registrar: e.data.registrar, registeredSeq: e.envelope.seq, ...(e.data.label !== undefined ? { label: e.data.label } : {}) })
    if (e.type === "ContributorRevoked") {
      const c = s.get(e.data.publicKey)
      if (c !== undefined) c.revokedSeq = e.envelope.seq
    }
    return s
  },
  view: (s) => [...s].sort(([, a], [, b]) => a.registeredSeq - b.registeredSeq).map(([publicKey, c]) => ({ publicKey, ...c })),
  snapshot: schemaCodec(1, ContributorsStateSchema)
}

export class ContributorRefused extends Schema.TaggedError<ContributorRefused>()("ContributorRefused", { message: Schema.String }) {}

/** The key that signs the genesis weights; its seed is public (see `GENESIS_CONTRIBUTOR_SEED`). */
export const GENESIS_CONTRIBUTOR = keyPairFromSeed(GENESIS_CONTRIBUTOR_SEED).publicKey

type Registration = Omit<EventData<"ContributorRegistered">, "signature">
type Revocation = Omit<EventData<"ContributorRevoked">, "signature">

// The act is part of what is signed, so a registration's signature can never pass for a revocation's.
const registrationHex = (r: Registration) =>
  Buffer.from(canonicalize({ act: "register contributor", publicKey: r.publicKey, registrar: r.registrar, ...(r.label !== undefined ? { label: r.label } : {}) }), "utf8").toString("hex")
const revocationHex = (r: Revocation) =>
  Buffer.from(canonicalize({ act: "revoke contributor", publicKey: r.publicKey, registrar: r.registrar, reason: r.reason }), "utf8").toString("hex")

/** A registration signed by the ledger key whose seed is given. */
export const signRegistration = (publicKey: string, ledgerSeed: string, label?: string): EventData<"ContributorRegistered"> => {
  const r: Registration = { publicKey, registrar: keyPairFromSeed(ledgerSeed).publicKey, ...(label !== undefined ? { label } : {}) }
  return { ...r, signature: signHex(ledgerSeed, registrationHex(r)) }
}

export const signRevocation = (publicKey: string, ledgerSeed: string, reason: string): EventData<"ContributorRevoked"> => {
  const r: Revocation = { publicKey, registrar: keyPairFromSeed(ledgerSeed).publicKey, reason }
  return { ...r, signature: signHex(ledgerSeed, revocationHex(r)) }
}

const registrarProblem = (registrar: string, ledgerKeys: ReadonlyArray<string>) =>
  ledgerKeys.includes(registrar)
    ? undefined
    : `it is signed by ${registrar}, which is not a ledger key trusted here (${ledgerKeys.length === 0 ? "none is" : ledgerKeys.join(", ")}; audit --trust KEY names another)`

/** Why this registration may not be applied, if it may not: a signature that is not a trusted ledger key's, or a key already known. */
export const registrationProblem = (s: ContributorsState, r: EventData<"ContributorRegistered">, ledgerKeys: ReadonlyArray<string>): string | undefined => {
  const who = `registration of contributor ${r.publicKey}`
  if (r.publicKey === GENESIS_CONTRIBUTOR) return `${who}: the genesis key signs only the seeded genesis weights`
  const untrusted = registrarProblem(r.registrar, ledgerKeys)
  if (untrusted !== undefined) return `${who}: ${untrusted}`
  if (!verifyHex(r.registrar, registrationHex(r), r.signature)) return `${who}: the signature is not ${r.registrar}'s`
  const known = s.get(r.publicKey)
  if (known !== undefined) return `${who}: ${known.revokedSeq === undefined ? "already registered" : `revoked at seq ${known.revokedSeq}; a revoked key stays revoked`}`
  return undefined
}

export const revocationProblem = (s: ContributorsState, r: EventData<"ContributorRevoked">, ledgerKeys: ReadonlyArray<string>): string | undefined => {
  const who = `revocation of contributor ${r.publicKey}`
  const untrusted = registrarProblem(r.registrar, ledgerKeys)
  if (untrusted !== undefined) return `${who}: ${untrusted}`
  if (!verifyHex(r.registrar, revocationHex(r), r.signature)) return `${who}: the signature is not ${r.registrar}'s`
  const known = s.get(r.publicKey)
  if (known === undefined) return `${who}: no such contributor is registered`
  if (known.revokedSeq !== undefined) return `${who}: already revoked at seq ${known.revokedSeq}`
  return undefined
}

/**
 * Why a block signed by `contributor` may not join the log now, if it may not. `genesis` says the
 * block holds the spec's seeded genesis weights (checked separately), the one thing the public
 * genesis key may sign.
 */
export const contributorProblem = (s: ContributorsState, contributor: string, genesis: boolean): string | undefined => {
  if (contributor === GENESIS_CONTRIBUTOR) return genesis ? undefined : "it is signed by the public genesis key, which may sign only the seeded genesis weights"
  const known = s.get(contributor)
  if (known === undefined) return `its contributor ${contributor} is not registered on this ledger`
  if (known.revokedSeq !== undefined) return `its contributor ${contributor} was revoked at seq ${known.revokedSeq}`
  return undefined
}

/** `contributorProblem` for a contributor about to sign new blocks, as a refusal. */
export const requireWriter = (s: ContributorsState, contributor: string): Either.Either<void, ContributorRefused> => {
  const problem = contributorProblem(s, contributor, false)
  return problem === undefined ? Either.void : Either.left(new ContributorRefused({ message: `this ledger accepts no blocks from this key: ${problem}` }))
}

export const decideRegisterContributor = (s: ContributorsState, r: EventData<"ContributorRegistered">): Either.Either<ReadonlyArray<NewEvent>, ContributorRefused> => {
  const problem = registrationProblem(s, r, [r.registrar])
  return problem === undefined ? Either.right([newEvent("ContributorRegistered", r)]) : Either.left(new ContributorRefused({ message: problem }))
}

export const decideRevokeContributor = (s: ContributorsState, r: EventData<"ContributorRevoked">): Either.Either<ReadonlyArray<NewEvent>, ContributorRefused> => {
  const problem = revocationProblem(s, r, [r.registrar])
  return problem === undefined ? Either.right([newEvent("ContributorRevoked", r)]) : Either.left(new ContributorRefused({ message: problem }))
}
