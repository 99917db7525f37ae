/**
 * Proofs about the log (see `domain/ledger/merkle.ts`): its Merkle tree head at a size, that an
 * event is in it, that an older head is a prefix of a newer one. Computed by reading the log's
 * envelope hashes; checked by `verifyLogProof` with the proof alone.
 */
import { Effect, Either, Schema, Stream } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { envelopeLeaf, fromHex, MerkleTree, toHex, verifyConsistency, verifyInclusion } from "../domain/ledger/merkle.ts"
import { Envelope, envelopeHash } from "../domain/ledger/envelope.ts"
import { ledgerKeyName, openTreeHead } from "../domain/ledger/tree-head.ts"
import { latestTrustedHead } from "./tree-heads.ts"

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

export const proveConsistency = (from: number, to?: number) =>
  Effect.gen(function* () {
    const { tree } = yield* treeOf(to)
    if (from < 0 || from > tree.size) return yield* new ProofUnavailable({ message: `a tree of ${from} events is not a prefix of one of ${tree.size}` })
    return {
      kind: "consistency",
      from,
      to: tree.size,
      fromRoot: toHex(tree.root(from)),
      toRoot: toHex(tree.root()),
      proof: tree.consistencyProof(from, tree.size).map(toHex)
    } satisfies LogProof
  })

/**
 * That each of `blocks` is on the log: the envelope that appended it, with its inclusion proof
 * against the latest tree head `trusted` signed, and that head's note. A client holding the
 * ledger's public key checks them with `verifyBlockProofs`, without the log.
 */
export const proveBlocks = (blocks: ReadonlyArray<string>, trusted: { readonly publicKey: string }) =>
  Effect.gen(function* () {
    const latest = yield* latestTrustedHead([{ name: ledgerKeyName(trusted.publicKey), publicKey: trusted.publicKey }])
    if (latest === undefined) return yield* new ProofUnavailable({ message: "the ledger has signed no tree head to prove blocks against" })
    const wanted = new Set(blocks)
    const found = new Map<string, Envelope>()
    const tree = new MerkleTree()
    yield* Stream.runForEach(Stream.take((yield* EventStore).readAll(0), latest.head.size), (e) =>
      Effect.sync(() => {
        tree.push(envelopeLeaf(e.hash))
        const block = e.type === "BlockAppended" ? (e.data as { readonly hash: string }).hash : undefined
        if (block !== undefined && wanted.has(block)) found.set(block, e)
      })
    )
    const missing = blocks.find((b) => !found.has(b))
    if (missing !== undefined) return yield* new ProofUnavailable({ message: `block ${missing} is not among the ${latest.head.size} events of the latest signed head` })
    const root = toHex(tree.root())
    const proofs = [...found.values()].map(
      (e) => ({ kind: "inclusion", seq: e.seq, size: tree.size, hash: e.hash, root, proof: tree.inclusionProof(e.seq, tree.size).map(toHex), envelope: e }) satisfies LogProof
    )
    return { checkpoint: latest.note, proofs }
  })

export type BlockProofs = Effect.Effect.Success<ReturnType<typeof proveBlocks>>

const decodeProof = Schema.decodeUnknownEither(Schema.parseJson(LogProof), { onExcessProperty: "error" })
const BlockProofsSchema = Schema.Struct({ checkpoint: Schema.String, proofs: Schema.Array(InclusionProof) })
const decodeBlockProofs = Schema.decodeUnknownEither(BlockProofsSchema)

/**
 * Check, offline, that every block in `blocks` is on the log of the ledger whose key is
 * `publicKey`: each has a proof whose envelope appended it, leading to the root of a checkpoint
 * that key signed. Either why not, or how many blocks and which head.
 */
export const verifyBlockProofs = (bundle: unknown, blocks: ReadonlyArray<string>, publicKey: string): Either.Either<string, string> => {
  const decoded = decodeBlockProofs(bundle)
  if (Either.isLeft(decoded)) return Either.left("not block proofs: expected { checkpoint, proofs } as `blyan chat --prove` gives them")
  const head = openTreeHead(decoded.right.checkpoint, [{ name: ledgerKeyName(publicKey), publicKey }])
  if (Either.isLeft(head)) return Either.left(`the checkpoint: ${head.left}`)
  const byBlock = new Map(decoded.right.proofs.map((p) => [(p.envelope?.data as { readonly hash?: unknown } | undefined)?.hash, p]))
  for (const block of new Set(blocks)) {
    const p = byBlock.get(block)
    if (p === undefined || p.envelope === undefined || p.envelope.type !== "BlockAppended") return Either.left(`no proof that block ${block} is on the log`)
    if (envelopeHash(p.envelope) !== p.hash) return Either.left(`the envelope given for block ${block} does not hash to ${p.hash}`)
    if (p.size !== head.right.size || p.root !== head.right.root) return Either.left(`the proof of block ${block} is not against the checkpoint`)
    if (!verifyInclusion(envelopeLeaf(p.hash), p.seq, p.size, p.proof.map(fromHex), fromHex(p.root))) return Either.left(`the inclusion proof of block ${block} does not lead to the checkpoint's root`)
  }
  return Either.right(`${new Set(blocks).size} blocks are on the log of ${head.right.size} events (root ${head.right.root}) that ${head.right.signer} signed`)
}

/**
 * Check a proof offline; with `head`, also that it ends at that tree head (its root, and its size
 * when given: a signed head gives both). Either why it does not hold, or what it shows.
 */
export const verifyLogProof = (text: string, head?: { readonly root: string; readonly size?: number }): Either.Either<string, string> =>
  Either.flatMap(
    Either.mapLeft(decodeProof(text), () => "not a proof: expected the JSON `blyan proof` prints"),
    (p): Either.Either<string, string> => {
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
  )
