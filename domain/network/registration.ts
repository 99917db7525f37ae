/**
 * A node joining the network (`Subjects.nodeRegister`, request/reply): it presents an API key
 * of role node and its ed25519 public key, and signs what it claims (its id, key and hardware
 * profile) with the matching private key. The owner of the `node-<id>` stream decides, and records
 * `NodeRegistered`; only the API key's hash is ever recorded.
 */
import { Either, ParseResult, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { sha256Hex } from "../ledger/hash.ts"
import { signHex, verifyHex } from "../ledger/signing.ts"
import { newEvent, type NewEvent } from "../ledger/events.ts"
import type { KeysState } from "../projections/keys.ts"
import { mayServe, type NodesState } from "../projections/nodes.ts"

/** A node id: one subject token and part of a stream name. */
export const NodeId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,128}$/), Schema.annotations({ identifier: "NodeId" }))
const Hex = (bytes: number) => Schema.String.pipe(Schema.pattern(new RegExp(`^[0-9a-f]{${bytes * 2}}$`)))

/** What a node claims about itself, signed. */
export const NodeProfile = Schema.Struct({
  node: NodeId,
  publicKey: Hex(32),
  device: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  /** Bytes of accelerator memory offered. */
  memory: Schema.Int.pipe(Schema.nonNegative()),
  /** Measured expert throughput (forward passes per second of one expert, batch 1). */
  speed: Schema.Number.pipe(Schema.finite(), Schema.positive()),
  /** Measured bytes per second the node's link carries to and from the bus; absent from nodes that predate measuring it. */
  bandwidth: Schema.optional(Schema.Number.pipe(Schema.finite(), Schema.positive()))
})
export type NodeProfile = typeof NodeProfile.Type

export const RegistrationRequest = Schema.Struct({
  profile: NodeProfile,
  apiKey: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)),
  signature: Hex(64)
})
export type RegistrationRequest = typeof RegistrationRequest.Type

export class RegistrationRefused extends Schema.TaggedError<RegistrationRefused>()("RegistrationRefused", { message: Schema.String }) {
  static because = (reason: string) => new RegistrationRefused({ message: `registration refused: ${reason}` })
}

/** The bytes a node signs: the canonical JSON of its profile, as hex. */
const signedBytes = (p: NodeProfile) => Buffer.from(canonicalize(p), "utf8").toString("hex")

export const signRegistration = (profile: NodeProfile, apiKey: string, seedHex: string): RegistrationRequest => ({
  profile,
  apiKey,
  signature: signHex(seedHex, signedBytes(profile))
})

const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(RegistrationRequest), { onExcessProperty: "error" })

/** A registration request from its bytes, or why it is not one. */
export const parseRegistration = (text: string): Either.Either<RegistrationRequest, RegistrationRefused> =>
  Either.mapLeft(decodeRequest(text), (e) => RegistrationRefused.because(`malformed request: ${ParseResult.TreeFormatter.formatErrorSync(e)}`))

/**
 * Decide a registration against the keys and the node registry: the API key must be issued, of
 * role node and not revoked; the signature must be the node key's over the profile; the id must
 * be free, or already this key's (a re-registration records the new profile), and not banned at
 * `now` (ms since the epoch; a ban for failing ends, one for cheating does not).
 */
export const decideRegistration = (keys: KeysState, nodes: NodesState, req: RegistrationRequest, now: number): Either.Either<ReadonlyArray<NewEvent>, RegistrationRefused> => {
  const refuse = (reason: string) => Either.left(RegistrationRefused.because(reason))
  const keyHash = sha256Hex(req.apiKey)
  const key = keys.get(keyHash)
  if (key === undefined) return refuse("unknown API key")
  if (key.revoked) return refuse("the API key is revoked")
  if (key.role !== "node") return refuse(`the API key is for a ${key.role}, not a node`)
  if (!verifyHex(req.profile.publicKey, signedBytes(req.profile), req.signature)) return refuse("the signature is not the node key's over its profile")
  const known = nodes.get(req.profile.node)
  if (known !== undefined && known.publicKey !== req.profile.publicKey) return refuse(`node id ${req.profile.node} belongs to another key`)
  if (known !== undefined && known.status === "banned" && !mayServe(known, now))
    return refuse(`node ${req.profile.node} is banned${known.bannedUntil === undefined ? "" : ` until ${new Date(known.bannedUntil).toISOString()}`}: ${known.banReason}`)
  return Either.right([newEvent("NodeRegistered", { ...req.profile, keyHash })])
}
