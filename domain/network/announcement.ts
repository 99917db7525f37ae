/**
 * What a registered node says of itself after registering: which expert blocks it serves (when it
 * starts serving and after every hot-swap), or that it has retired after draining. Signed with the
 * node's registered key; the owner of the node's stream checks it against the ledger and records
 * `NodeExpertsAnnounced` or `NodeRetired`. Nodes never write the log themselves.
 */
import { Either, ParseResult, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { signHex, verifyHex } from "../ledger/signing.ts"
import { newEvent, type NewEvent } from "../ledger/events.ts"
import type { ModelState } from "../projections/model.ts"
import type { NodesState } from "../projections/nodes.ts"
import { expertPart } from "../model/spec.ts"
import { importedPart, ModelName } from "../model/families/imported-spec.ts"
import { NodeId } from "./registration.ts"

const Hash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
const Index = Schema.Int.pipe(Schema.nonNegative())

/** An expert a node serves: of the built-in model, or of the imported model it names. */
export const HostedExpertClaim = Schema.Struct({ layer: Index, expert: Index, block: Hash, model: Schema.optional(ModelName) })
export type HostedExpertClaim = typeof HostedExpertClaim.Type

export const AnnouncementClaim = Schema.Struct({
  node: NodeId,
  /** "serving": the experts in `hosted`; "retired": drained and gone (`hosted` empty). */
  kind: Schema.Literal("serving", "retired"),
  hosted: Schema.Array(HostedExpertClaim).pipe(Schema.maxItems(4096))
})
export type AnnouncementClaim = typeof AnnouncementClaim.Type

export const Announcement = Schema.Struct({ ...AnnouncementClaim.fields, signature: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{128}$/)) })
export type Announcement = typeof Announcement.Type

export class AnnouncementRefused extends Schema.TaggedError<AnnouncementRefused>()("AnnouncementRefused", { message: Schema.String }) {
  static because = (reason: string) => new AnnouncementRefused({ message: `announcement refused: ${reason}` })
}

const claimHex = (c: AnnouncementClaim) => Buffer.from(canonicalize({ node: c.node, kind: c.kind, hosted: c.hosted }), "utf8").toString("hex")

export const signAnnouncement = (claim: AnnouncementClaim, seedHex: string): Announcement => ({ ...claim, signature: signHex(seedHex, claimHex(claim)) })

const decode = Schema.decodeUnknownEither(Schema.parseJson(Announcement), { onExcessProperty: "error" })

export const parseAnnouncement = (text: string): Either.Either<Announcement, AnnouncementRefused> =>
  Either.mapLeft(decode(text), (e) => AnnouncementRefused.because(`malformed: ${ParseResult.TreeFormatter.formatErrorSync(e)}`))

/** The block name of the expert a claim names. */
export const claimedPart = (h: HostedExpertClaim): string => (h.model === undefined ? expertPart(h.layer, h.expert) : importedPart(h.model, expertPart(h.layer, h.expert)))

/**
 * Decide an announcement: the node must be registered, active and the signer; every block it
 * claims must be the current block of the expert it names (a node serving an outdated or unknown
 * block is not one the router may use). Whether the node really holds those blocks is checked by
 * the caller, by asking it to compute (see `actors/node-admission.ts`).
 */
export const decideAnnouncement = (nodes: NodesState, model: ModelState, a: Announcement): Either.Either<ReadonlyArray<NewEvent>, AnnouncementRefused> => {
  const refuse = (reason: string) => Either.left(AnnouncementRefused.because(reason))
  const known = nodes.get(a.node)
  if (known === undefined) return refuse(`node ${a.node} is not registered`)
  if (known.status !== "active") return refuse(`node ${a.node} is ${known.status}`)
  if (!verifyHex(known.publicKey, claimHex(a), a.signature)) return refuse(`the signature is not node ${a.node}'s registered key's`)
  if (a.kind === "retired") return a.hosted.length > 0 ? refuse("a retirement names no experts") : Either.right([newEvent("NodeRetired", { node: a.node })])
  if (a.hosted.length === 0) return refuse("a node serving nothing announces its retirement instead")
  for (const h of a.hosted) {
    const part = claimedPart(h)
    const current = model.current.get(part)
    if (current === undefined) return refuse(`the model has no ${part}`)
    if (current.block !== h.block) return refuse(`block ${h.block.slice(0, 16)}… is not the current block of ${part} (${current.block.slice(0, 16)}…)`)
  }
  return Either.right([newEvent("NodeExpertsAnnounced", { node: a.node, blocks: [...new Set(a.hosted.map((h) => h.block))].sort() })])
}
