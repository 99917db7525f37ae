/**
 * Blobs over the bus: `serveBlobs` answers chunk reads from the local blob store (the process
 * that holds the ledger; a contributor serves its candidate the same way), and `fetchBlob` is a follower's side: it reads a blob chunk by chunk
 * and keeps it only once the whole hashes to the address it asked for.
 */
import { Effect, Either, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { BLOB_HEADER_ROOM, decodeBlobChunk, decodeBlobRead, encodeBlobChunk, encodeBlobRead, encodeBlobRefusal } from "../domain/network/blob-wire.ts"
import { Subjects } from "../domain/network/subjects.ts"
import type { ModelState } from "../domain/projections/model.ts"

/** What came over the bus for `hash` is not the blob: its bytes hash elsewhere, or its size moved. */
export class BlobFetchFailed extends Schema.TaggedError<BlobFetchFailed>()("BlobFetchFailed", { hash: Schema.String, message: Schema.String }) {}

/**
 * Answer blob reads on `subject` with what `get` gives for a hash, until the scope closes; the
 * blob last asked for is kept, since its chunks are asked for in turn.
 */
export const serveBlobsOn = <E extends { readonly message: string }, R>(subject: string, get: (hash: string) => Effect.Effect<Uint8Array, E, R>) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const context = yield* Effect.context<R>()
    const chunkBytes = bus.maxPayload - BLOB_HEADER_ROOM
    let last: { readonly hash: string; readonly bytes: Uint8Array } | undefined
    yield* bus.serve(subject, (request) =>
      Either.match(decodeBlobRead(request.data), {
        onLeft: (e) => Effect.succeed(encodeBlobRefusal(e.message)),
        onRight: ({ hash, offset }) =>
          Effect.gen(function* () {
            const bytes = last?.hash === hash ? last.bytes : yield* get(hash)
            last = { hash, bytes }
            if (offset > bytes.length) return encodeBlobRefusal(`offset ${offset} is past the end of blob ${hash} (${bytes.length} bytes)`)
            return encodeBlobChunk(bytes.length, bytes.subarray(offset, offset + chunkBytes))
          }).pipe(
            Effect.catchAll((e) => Effect.succeed(encodeBlobRefusal(e.message))),
            Effect.provide(context)
          )
      })
    )
  })

/** Answer blob reads from the local blob store (the ledger's holder) until the scope closes. */
export const serveBlobs = Effect.flatMap(BlobStore, (blobs) => serveBlobsOn(Subjects.blobRead, blobs.get))

/** The blob at `hash`, read over the bus (from the ledger's holder unless `subject` names another server) and verified whole. */
export const fetchBlob = (hash: string, options: { readonly timeoutMs: number; readonly subject?: string }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const failed = (message: string) => new BlobFetchFailed({ hash, message: `cannot fetch blob ${hash}: ${message}` })
    const parts: Uint8Array[] = []
    let size: number | undefined
    let got = 0
    do {
      const answer = yield* bus.request(options.subject ?? Subjects.blobRead, encodeBlobRead({ hash, offset: got }), { timeoutMs: options.timeoutMs })
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

/** Every current part's payload of `state` in the local blob store; those missing are fetched over the bus. */
export const fetchModelBlobs = (state: ModelState, timeoutMs: number) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    for (const { payload } of state.current.values()) if (!(yield* blobs.has(payload))) yield* blobs.put(yield* fetchBlob(payload, { timeoutMs }))
  })
