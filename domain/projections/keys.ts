import { Either, Schema } from "effect"
import { newEvent, type NewEvent, type Role } from "../ledger/events.ts"
import type { Projection } from "./projection.ts"

export type KeyEntry = { readonly keyHash: string; readonly role: Role; readonly issuedSeq: number; revoked: boolean; label?: string }
export type KeysState = Map<string, KeyEntry>

export const KeysProjection: Projection<KeysState, unknown> = {
  name: "keys",
  initial: () => new Map(),
  evolve: (s, e) => {
    if (e.type === "ApiKeyIssued")
      s.set(e.data.keyHash, { keyHash: e.data.keyHash, role: e.data.role, issuedSeq: e.envelope.seq, revoked: false, ...(e.data.label ? { label: e.data.label } : {}) })
    if (e.type === "ApiKeyRevoked") {
      const k = s.get(e.data.keyHash)
      if (k) k.revoked = true
    }
    return s
  },
  view: (s) => [...s.values()].sort((a, b) => a.issuedSeq - b.issuedSeq)
}

export class KeyRefused extends Schema.TaggedError<KeyRefused>()("KeyRefused", { message: Schema.String }) {}

/** Issue: the key's hash must be new. Only the hash is ever recorded. */
export const decideIssueKey = (s: KeysState, keyHash: string, role: Role, label?: string): Either.Either<NewEvent[], KeyRefused> =>
  s.has(keyHash)
    ? Either.left(new KeyRefused({ message: "a key with this hash is already issued" }))
    : Either.right([newEvent("ApiKeyIssued", { keyHash, role, ...(label ? { label } : {}) })])

export const decideRevokeKey = (s: KeysState, keyHash: string, reason?: string): Either.Either<NewEvent[], KeyRefused> => {
  const k = s.get(keyHash)
  if (!k) return Either.left(new KeyRefused({ message: `no key with hash ${keyHash}` }))
  if (k.revoked) return Either.left(new KeyRefused({ message: `key ${keyHash} is already revoked` }))
  return Either.right([newEvent("ApiKeyRevoked", { keyHash, ...(reason ? { reason } : {}) })])
}

/** The role of a presented key's hash, if it is issued and not revoked. */
export const roleOf = (s: KeysState, keyHash: string): Role | undefined => {
  const k = s.get(keyHash)
  return k && !k.revoked ? k.role : undefined
}
