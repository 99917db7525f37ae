import { Effect } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { ChainProjection, referencedPayloads } from "../domain/projections/chain.ts"
import { foldStream } from "./command.ts"

/**
 * How long an unreferenced blob is kept: long enough for any writer to go from storing a payload
 * to appending the block that names it.
 */
export const ORPHAN_GRACE_MS = 15 * 60_000

/** The blobs no event refers to (payloads a killed writer stored but never recorded). */
export const orphanBlobs = Effect.gen(function* () {
  const { state } = yield* foldStream("*", ChainProjection)
  const keep = referencedPayloads(state)
  return (yield* (yield* BlobStore).list).filter((h) => !keep.has(h))
})

/** Remove orphan blobs older than the grace period; run by the writer (`init`, `up`). */
export const pruneOrphanBlobs = (graceMs = ORPHAN_GRACE_MS) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", ChainProjection)
    return yield* (yield* BlobStore).prune(referencedPayloads(state), graceMs)
  })
