import { Effect, Stream } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { makeReplayer, type Replay } from "../domain/ledger/audit.ts"
import type { PayloadFact } from "../domain/ledger/blocks.ts"
import { viewLedgerState } from "../domain/projections/ledger-state.ts"
import { expertsPendingUpdate } from "../domain/projections/model.ts"
import { referencedPayloads } from "../domain/projections/chain.ts"
import { startSnapshotAudit, type SnapshotAudit } from "./snapshot-audit.ts"
import { envelopeLeaf, MerkleAccumulator, toHex } from "../domain/ledger/merkle.ts"
import type { TreeHead } from "../domain/ledger/tree-head.ts"

export type BlobFinding = { readonly blob: string; readonly reason: string }

export type AuditReport = {
  readonly replay: Replay
  readonly blobs: number
  readonly badBlobs: ReadonlyArray<BlobFinding>
  /** Experts whose stream lacks an `ExpertUpdated` for a version on chain B: an operation cut off by a crash. */
  readonly incomplete: ReadonlyArray<string>
  /** Stored blobs no event refers to: payloads an interrupted writer stored but never recorded. */
  readonly orphans: ReadonlyArray<string>
  /** Every projection snapshot compared with the replay at its seq; bad ones are reported and removed, never fatal. */
  readonly snapshots: SnapshotAudit
  /** Signed tree heads compared with the log: how many matched, and each one the log contradicts. */
  readonly heads: { readonly matched: number; readonly contradicted: ReadonlyArray<string> }
}

export type AuditOptions = {
  readonly onProgress?: (done: number, total: number) => void
  /** Signed tree heads, already verified as signed by a trusted key. */
  readonly heads?: ReadonlyArray<TreeHead & { readonly signer: string }>
  /** The ledger keys trusted to register contributors (see `ReplayOptions`). */
  readonly ledgerKeys?: ReadonlyArray<string>
}

/**
 * Verify every stored blob against its address, then replay the log from seq 0 with those facts,
 * so a block whose payload was altered fails at its own seq; and compare the log with each signed
 * tree head in `heads`: a log shorter than a head, or whose first events have another root,
 * contradicts it.
 */
export const auditLedger = ({ onProgress = () => {}, heads = [], ledgerKeys = [] }: AuditOptions = {}) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const blobs = yield* BlobStore
    const hashes = yield* blobs.list
    const facts = new Map<string, PayloadFact>()
    const badBlobs: BlobFinding[] = []
    for (const h of hashes) {
      // Hashed streaming: a blob is never held whole, whatever its size.
      const got = yield* Effect.either(blobs.verify(h))
      if (got._tag === "Right") facts.set(h, { sha256: h, size: got.right })
      else {
        badBlobs.push({ blob: h, reason: got.left.message })
        // An altered blob still answers to its address; what it hashes to now is what blocks see.
        if (got.left._tag === "BlobCorrupted") facts.set(h, { sha256: got.left.actual, size: -1 })
      }
    }
    const total = ((yield* store.head)?.seq ?? -1) + 1
    const replayer = makeReplayer({ payload: (h) => facts.get(h) ?? "missing", ledgerKeys })
    const snapshots = yield* startSnapshotAudit
    const rebuilt = () => replayer.result().state
    const tree = new MerkleAccumulator()
    const pending = [...heads].sort((a, b) => a.size - b.size)
    const contradicted: string[] = []
    let matched = 0
    const compareHeads = () => {
      while (pending.length > 0 && pending[0]!.size === tree.size) {
        const h = pending.shift()!
        const root = toHex(tree.root())
        if (root === h.root) matched++
        else contradicted.push(`the log's first ${h.size} events have Merkle root ${root}, but ${h.signer} signed root ${h.root} for them: the log was rewritten`)
      }
    }
    compareHeads()
    let n = 0
    yield* store.readAll(0).pipe(
      Stream.takeUntil((env) => {
        if (++n % 10_000 === 0) onProgress(n, total)
        if (!replayer.step(env)) return true
        if (snapshots.watching) snapshots.step(env, rebuilt)
        tree.push(envelopeLeaf(env.hash))
        compareHeads()
        return false
      }),
      Stream.runDrain
    )
    const result = replayer.result()
    if (result.firstBad === undefined)
      for (const h of pending) contradicted.push(`the log holds ${tree.size} events, but ${h.signer} signed a head of ${h.size}: the log was cut short`)
    const referenced = referencedPayloads(result.state.chain)
    const orphans = hashes.filter((h) => !referenced.has(h))
    return {
      replay: result,
      blobs: hashes.length,
      badBlobs,
      incomplete: expertsPendingUpdate(result.state.model),
      orphans,
      snapshots: yield* snapshots.finish,
      heads: { matched, contradicted }
    } satisfies AuditReport
  })

/** The rebuilt read models, in the canonical form used to compare a replay with live state. */
export const auditView = (r: AuditReport) => viewLedgerState(r.replay.state)
