/**
 * Proofs about the log (see `domain/ledger/merkle.ts`): its Merkle tree head at a size, that an
 * event is in it, that an older head is a prefix of a newer one. Computed by reading the log's
 * envelope hashes; checked by `verifyLogProof` with the proof alone.
 */
import { Effect, Either, Schema, Stream } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { envelopeLeaf, fromHex, MerkleTree, toHex, verifyConsistency, verifyInclusion } from "../domain/ledger/merkle.ts"
import { Envelope, envelopeHash } from "../domain/ledger/envelope.ts"

/** A proof asked of a log that does not reach it. */
export class ProofUnavailable extends Schema.TaggedError<ProofUnavailable>()("ProofUnavailable", { message: Schema.String }) {}

const Hex32 = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
const Size = Schema.Int.pipe(Schema.nonNegative())

export const InclusionProof = Schema.Struct({
  kind: Schema.Literal("inclusion"),
  seq: Size,
  size: Size,
  /** The envelope's hash: the leaf. */
  hash: Hex32,
  root: Hex32,
  proof: Schema.Array(Hex32),
  /** The envelope itself, when the proof is about what it holds (a block): it must hash to `hash`. */
  envelope: Schema.optional(Envelope)
})
export const ConsistencyProof = Schema.Struct({
  kind: Schema.Literal("consistency"),
  from: Size,
  to: Size,
  fromRoot: Hex32,
  toRoot: Hex32,
  proof: Schema.Array(Hex32)
})
export const LogProof = Schema.Union(InclusionProof, ConsistencyProof)
export type LogProof = typeof LogProof.Type

/** The envelope hashes of the first `size` events (all of them by default), and their tree. */
const treeOf = (size?: number) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const head = ((yield* store.head)?.seq ?? -1) + 1
    const n = size ?? head
    if (n > head) return yield* new ProofUnavailable({ message: `the log holds ${head} events, not ${n}` })
    const hashes: string[] = []
    const tree = new MerkleTree()
    yield* Stream.runForEach(Stream.take(store.readAll(0), n), (e) =>
      Effect.sync(() => {
        hashes.push(e.hash)
        tree.push(envelopeLeaf(e.hash))
      })
    )
    return { hashes, tree }
  })

export const proveInclusion = (seq: number, size?: number) =>
  Effect.gen(function* () {
    const { hashes, tree } = yield* treeOf(size)
    if (seq < 0 || seq >= tree.size) return yield* new ProofUnavailable({ message: `seq ${seq} is not among the ${tree.size} events of the tree` })
    return { kind: "inclusion", seq, size: tree.size, hash: hashes[seq]!, root: toHex(tree.root()), proof: tree.inclusionProof(seq, tree.size).map(toHex) } satisfies LogProof
  })

/** The proof that the tree's first `from` leaves are a prefix of its first `to` (default: all of them). */
export const consistencyIn = (tree: MerkleTree, from: number, to = tree.size): Either.Either<LogProof, ProofUnavailable> =>
  to > tree.size
    ? Either.left(new ProofUnavailable({ message: `the log holds ${tree.size} events, not ${to}` }))
    : from < 0 || from > to
      ? Either.left(new ProofUnavailable({ message: `a tree of ${from} events is not a prefix of one of ${to}` }))
      : Either.right({ kind: "consistency", from, to, fromRoot: toHex(tree.root(from)), toRoot: toHex(tree.root(to)), proof: tree.consistencyProof(from, to).map(toHex) })

export const proveConsistency = (from: number, to?: number) => Effect.flatMap(treeOf(to), ({ tree }) => consistencyIn(tree, from))

const decodeProof = Schema.decodeUnknownEither(Schema.parseJson(LogProof), { onExcessProperty: "error" })

/**
 * Check a proof offline; with `head`, also that it ends at that tree head (its root, and its size
 * when given: a signed head gives both). Either why it does not hold, or what it shows.
 */
export const verifyLogProof = (text: string, head?: { readonly root: string; readonly size?: number }): Either.Either<string, string> =>
  Either.flatMap(
    Either.mapLeft(decodeProof(text), () => "not a proof: expected the JSON `blyan proof` prints"),
    (p) => checkLogProof(p, head)
  )

/** Check a decoded proof (see `verifyLogProof`). */
export const checkLogProof = (p: LogProof, head?: { readonly root: string; readonly size?: number }): Either.Either<string, string> => {
  const [size, root] = p.kind === "inclusion" ? [p.size, p.root] : [p.to, p.toRoot]
  if (head !== undefined && root !== head.root) return Either.left(`the proof is against root ${root}, not ${head.root}`)
  if (head?.size !== undefined && size !== head.size) return Either.left(`the proof is against a tree of ${size} events, not ${head.size}`)
  if (p.kind === "inclusion" && p.envelope !== undefined && envelopeHash(p.envelope) !== p.hash) return Either.left(`the envelope given does not hash to ${p.hash}`)
  if (p.kind === "inclusion")
    return verifyInclusion(envelopeLeaf(p.hash), p.seq, p.size, p.proof.map(fromHex), fromHex(p.root))
      ? Either.right(`event ${p.hash} is seq ${p.seq} of the log of ${p.size} events with root ${p.root}`)
      : Either.left(`the inclusion proof of seq ${p.seq} does not lead to root ${p.root}`)
  return verifyConsistency(p.from, p.to, fromHex(p.fromRoot), fromHex(p.toRoot), p.proof.map(fromHex))
    ? Either.right(`the log of ${p.from} events (root ${p.fromRoot}) is a prefix of the log of ${p.to} (root ${p.toRoot})`)
    : Either.left(`the log of ${p.from} events with root ${p.fromRoot} is not shown to be a prefix of the log of ${p.to} with root ${p.toRoot}`)
}
