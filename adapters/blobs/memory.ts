/**
 * Blobs held in memory for as long as the process runs: what a short-lived follower (a
 * contributor submitting to a network) keeps of the weights it fetched. Every read re-hashes, as
 * in the file store.
 */
import { Effect } from "effect"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { BlobNotFound, checkBlobBytes, type BlobCorrupted, type BlobStoreApi } from "../../domain/ports/blob-store.ts"

export const makeMemoryBlobStore = (): Effect.Effect<BlobStoreApi> =>
  Effect.sync(() => {
    const blobs = new Map<string, { readonly bytes: Uint8Array; readonly at: number }>()
    const get = (hash: string): Effect.Effect<Uint8Array, BlobNotFound | BlobCorrupted> =>
      Effect.suspend((): Effect.Effect<Uint8Array, BlobNotFound | BlobCorrupted> => {
        const b = blobs.get(hash)
        return b === undefined ? Effect.fail(BlobNotFound.of({ hash })) : checkBlobBytes(hash, b.bytes)
      })
    return {
      put: (bytes) =>
        Effect.sync(() => {
          const hash = sha256Hex(bytes)
          blobs.set(hash, { bytes: bytes.slice(), at: Date.now() })
          return hash
        }),
      get,
      verify: (hash) => Effect.map(get(hash), (b) => b.length),
      has: (hash) => Effect.sync(() => blobs.has(hash)),
      list: Effect.sync(() => [...blobs.keys()]),
      prune: (keep, graceMs) =>
        Effect.sync(() => {
          const now = Date.now()
          const removed = [...blobs].filter(([hash, b]) => !keep.has(hash) && now - b.at >= graceMs).map(([hash]) => hash)
          for (const hash of removed) blobs.delete(hash)
          return removed
        })
    }
  })
