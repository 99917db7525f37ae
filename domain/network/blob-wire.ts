/**
 * How blobs travel on the bus (`Subjects.blobRead`): a read asks for the bytes of a blob from an
 * offset; the answer is a frame (see frames.ts) whose header is `{size}`, with the chunk as its
 * body, or `{error}`. A fetcher asks chunk after chunk and trusts nothing until the
 * whole blob hashes to the address it asked for.
 */
import { Either, Schema } from "effect"
import { frame, unframe } from "./frames.ts"

export class MalformedBlobMessage extends Schema.TaggedError<MalformedBlobMessage>()("MalformedBlobMessage", { message: Schema.String }) {}

const BlobRead = Schema.parseJson(
  Schema.Struct({ hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)), offset: Schema.Int.pipe(Schema.nonNegative()) })
)
export type BlobRead = typeof BlobRead.Type

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const encodeBlobRead = (r: BlobRead): Uint8Array => encoder.encode(JSON.stringify(r))

export const decodeBlobRead = (data: Uint8Array): Either.Either<BlobRead, MalformedBlobMessage> =>
  Either.mapLeft(Schema.decodeUnknownEither(BlobRead, { onExcessProperty: "error" })(decoder.decode(data)), () =>
    new MalformedBlobMessage({ message: 'a blob read must be {"hash": <sha256 hex>, "offset": <byte ≥ 0>}' })
  )

/** Room for an answer's length word and header, beside its chunk. */
export const BLOB_HEADER_ROOM = 128

export const encodeBlobChunk = (size: number, chunk: Uint8Array): Uint8Array => frame({ size }, chunk)
export const encodeBlobRefusal = (reason: string): Uint8Array => frame({ error: reason })

/** The blob's size and the chunk an answer holds, or why it holds none. */
export const decodeBlobChunk = (data: Uint8Array): Either.Either<{ readonly size: number; readonly chunk: Uint8Array }, MalformedBlobMessage> =>
  Either.flatMap(
    Either.mapLeft(unframe(data), (e) => new MalformedBlobMessage({ message: e.message.replace("a message", "a blob answer") })),
    ({ header, body }) => {
      const h = header as { size?: unknown; error?: unknown } | null
      if (typeof h?.error === "string") return Either.left(new MalformedBlobMessage({ message: `the blob server refused: ${h.error}` }))
      if (typeof h?.size !== "number" || !Number.isSafeInteger(h.size) || h.size < 0) return Either.left(new MalformedBlobMessage({ message: "a blob answer's header names no size" }))
      return Either.right({ size: h.size, chunk: body })
    }
  )
