/**
 * Proofs that the blocks an answer names are on the log: each block's envelope with its inclusion
 * proof against the latest tree head the ledger's key signed, and their offline check.
 */
import { Effect, Either, Schema, Stream } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { envelopeLeaf, MerkleTree, toHex } from "../domain/ledger/merkle.ts"
import type { Envelope } from "../domain/ledger/envelope.ts"
import { ledgerKeyName, openTreeHead } from "../domain/ledger/tree-head.ts"
import { checkLogProof, InclusionProof, ProofUnavailable, type LogProof } from "./log-proofs.ts"
import { latestTrustedHead } from "./tree-heads.ts"

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
    const checked = checkLogProof(p, head.right)
    if (Either.isLeft(checked)) return Either.left(`block ${block}: ${checked.left}`)
  }
  return Either.right(`${new Set(blocks).size} blocks are on the log of ${head.right.size} events (root ${head.right.root}) that ${head.right.signer} signed`)
}
