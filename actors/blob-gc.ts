import { Effect } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { ChainProjection, referencedPayloads } from "../domain/projections/chain.ts"
import { foldStream } from "./command.ts"

/**
 * How long an unreferenced blob is kept: long enough for any writer to go from storing a payload
 * to appending the block that names it.
 */
export const ORPHAN_GRACE_MS = 15 * 60_000

/** Remove orphan blobs older than the grace period; run by the writer (`init`, `up`). */
export const pruneOrphanBlobs = (graceMs = ORPHAN_GRACE_MS) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", ChainProjection)
    return yield* (yield* BlobStore).prune(referencedPayloads(state), graceMs)
  })
