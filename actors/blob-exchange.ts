/**
 * Blobs over the bus: `serveBlobs` answers chunk reads from the local blob store (the process
 * that holds the ledger), and `fetchBlob` is a follower's side: it reads a blob chunk by chunk
 * and keeps it only once the whole hashes to the address it asked for.
 */
import { Effect, Either, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { BLOB_HEADER_ROOM, decodeBlobChunk, decodeBlobRead, encodeBlobChunk, encodeBlobRead, encodeBlobRefusal } from "../domain/network/blob-wire.ts"
import { Subjects } from "../domain/network/subjects.ts"

/** What came over the bus for `hash` is not the blob: its bytes hash elsewhere, or its size moved. */
export class BlobFetchFailed extends Schema.TaggedError<BlobFetchFailed>()("BlobFetchFailed", { hash: Schema.String, message: Schema.String }) {}

/** Answer blob reads until the scope closes; the blob last asked for is kept, since its chunks are asked for in turn. */
export const serveBlobs = Effect.gen(function* () {
  const bus = yield* Bus
  const blobs = yield* BlobStore
  const chunkBytes = bus.maxPayload - BLOB_HEADER_ROOM
  let last: { readonly hash: string; readonly bytes: Uint8Array } | undefined
  yield* bus.serve(Subjects.blobRead, (request) =>
    Either.match(decodeBlobRead(request.data), {
      onLeft: (e) => Effect.succeed(encodeBlobRefusal(e.message)),
      onRight: ({ hash, offset }) =>
        Effect.gen(function* () {
          const bytes = last?.hash === hash ? last.bytes : yield* blobs.get(hash)
          last = { hash, bytes }
          if (offset > bytes.length) return encodeBlobRefusal(`offset ${offset} is past the end of blob ${hash} (${bytes.length} bytes)`)
          return encodeBlobChunk(bytes.length, bytes.subarray(offset, offset + chunkBytes))
        }).pipe(Effect.catchAll((e) => Effect.succeed(encodeBlobRefusal(e.message))))
    })
  )
})

/** The blob at `hash`, read over the bus and verified whole. */
export const fetchBlob = (hash: string, options: { readonly timeoutMs: number }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const failed = (message: string) => new BlobFetchFailed({ hash, message: `cannot fetch blob ${hash}: ${message}` })
    const parts: Uint8Array[] = []
    let size: number | undefined
    let got = 0
    do {
      const answer = yield* bus.request(Subjects.blobRead, encodeBlobRead({ hash, offset: got }), options)
      const chunk = yield* Either.mapLeft(decodeBlobChunk(answer), (e) => failed(e.message))
      if (size !== undefined && chunk.size !== size) return yield* failed(`its size changed from ${size} to ${chunk.size} bytes`)
      size = chunk.size
      if (chunk.chunk.length === 0 && got < size) return yield* failed(`no bytes came at offset ${got}`)
      parts.push(chunk.chunk.slice())
      got += chunk.chunk.length
    } while (got < size)
    const bytes = Buffer.concat(parts)
    if (bytes.length !== size) return yield* failed(`${bytes.length} bytes came for a blob of ${size}`)
    const actual = sha256Hex(bytes)
    if (actual !== hash) return yield* failed(`the bytes that came hash to ${actual}`)
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  })
