/**
 * The ledger's side of witnessing, served over the bus by the process that holds the log: its
 * latest signed tree head, a consistency proof between two sizes, and the heads witnesses hand
 * back co-signed, kept with its own so that `blyan proof head` shows who witnessed them; and,
 * for clients, proofs that the blocks an answer names are on the log.
 */
import { Effect, Either, Schema } from "effect"
import { TreeHeadStore } from "../domain/ports/tree-head-store.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { ledgerKeyName, mergeNotes, noteBody, openTreeHead, witnessesOf } from "../domain/ledger/tree-head.ts"
import { ProofUnavailable, type LogProof } from "./log-proofs.ts"
import type { StoreFailure } from "../domain/ledger/errors.ts"
import { proveBlocks, type BlockProofs } from "./block-proofs.ts"
import { latestTrustedHead } from "./tree-heads.ts"
import { askJson, serveJson } from "./owner-requests.ts"

/** A witness's request the ledger cannot answer, in words. */
export class HeadRefused extends Schema.TaggedError<HeadRefused>()("HeadRefused", { message: Schema.String }) {}

const Size = Schema.Int.pipe(Schema.nonNegative())
export const ConsistencyRequest = Schema.Struct({ from: Size, to: Size })
export const CosignedHead = Schema.Struct({ note: Schema.String.pipe(Schema.maxLength(16_384)) })
export const ProveBlocksRequest = Schema.Struct({ blocks: Schema.Array(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))).pipe(Schema.maxItems(4096)) })

/**
 * Serve the ledger's heads to witnesses until the scope closes; `publicKey` is the ledger key that
 * signs them, `consistency` makes the proofs (from the tree a writer keeps, `trackTreeHead`, or
 * by reading the log, `proveConsistency`).
 */
export const serveTreeHeads = <R>(publicKey: string, consistency: (from: number, to: number) => Effect.Effect<LogProof, ProofUnavailable | StoreFailure, R>) =>
  Effect.gen(function* () {
    const store = yield* TreeHeadStore
    const trusted = [{ name: ledgerKeyName(publicKey), publicKey }]
    const latest = Effect.flatMap(latestTrustedHead(trusted), (l) =>
      l === undefined ? new HeadRefused({ message: "this ledger has signed no tree head yet" }) : Effect.succeed({ note: l.note, publicKey })
    )
    yield* serveJson(Subjects.ledgerHead, Schema.Struct({}), () => latest)
    yield* serveJson(Subjects.ledgerConsistency, ConsistencyRequest, ({ from, to }) => Effect.map(consistency(from, to), (proof) => ({ proof })))
    yield* serveJson(Subjects.ledgerProveBlocks, ProveBlocksRequest, ({ blocks }) => proveBlocks(blocks, { publicKey }))
    // One at a time: two witnesses' signatures on the same head are merged, never one lost to the other.
    const gate = yield* Effect.makeSemaphore(1)
    yield* serveJson(Subjects.ledgerCosigned, CosignedHead, ({ note }) =>
      gate.withPermits(1)(Effect.gen(function* () {
        if (Either.isLeft(openTreeHead(note, trusted))) return yield* new HeadRefused({ message: "the note is not a head this ledger's key signed" })
        if (witnessesOf(note).length === 0) return yield* new HeadRefused({ message: "the note carries no witness signature that verifies" })
        // Only a head this ledger signed itself is kept again, with every signature it has gathered.
        const own = (yield* store.all).filter((n) => noteBody(n) === noteBody(note))
        if (own.length === 0) return yield* new HeadRefused({ message: "this ledger never signed that head" })
        const merged = mergeNotes(own[own.length - 1]!, note)
        if (merged !== own[own.length - 1]) yield* store.append(merged)
        return {}
      }))
    )
  })

/** Ask the ledger's holder for proofs that `blocks` are on its log; its refusal as ProofUnavailable. */
export const askBlockProofs = (blocks: ReadonlyArray<string>, timeoutMs: number) =>
  Effect.map(
    askJson<BlockProofs, ProofUnavailable>(Subjects.ledgerProveBlocks, { blocks } satisfies typeof ProveBlocksRequest.Type, timeoutMs, (reason) => new ProofUnavailable({ message: reason })),
    ({ checkpoint, proofs }): BlockProofs => ({ checkpoint, proofs })
  )
