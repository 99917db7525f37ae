/**
 * How blobs travel on the bus (`Subjects.blobRead`): a read asks for the bytes of a blob from an
 * offset; the answer is a 4-byte length, a JSON header (`{size}` with the chunk after it, or
 * `{error}`), and the chunk itself. A fetcher asks chunk after chunk and trusts nothing until the
 * whole blob hashes to the address it asked for.
 */
import { Either, Schema } from "effect"

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

const framed = (header: object, chunk: Uint8Array = new Uint8Array(0)) => {
  const h = encoder.encode(JSON.stringify(header))
  const out = new Uint8Array(4 + h.length + chunk.length)
  new DataView(out.buffer).setUint32(0, h.length, true)
  out.set(h, 4)
  out.set(chunk, 4 + h.length)
  return out
}

export const encodeBlobChunk = (size: number, chunk: Uint8Array): Uint8Array => framed({ size }, chunk)
export const encodeBlobRefusal = (reason: string): Uint8Array => framed({ error: reason })

/** The blob's size and the chunk an answer holds, or why it holds none. */
export const decodeBlobChunk = (data: Uint8Array): Either.Either<{ readonly size: number; readonly chunk: Uint8Array }, MalformedBlobMessage> => {
  const bad = (message: string) => Either.left(new MalformedBlobMessage({ message }))
  if (data.length < 4) return bad("a blob answer is shorter than its length word")
  const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true)
  if (4 + length > data.length) return bad("a blob answer's header runs past its end")
  let header: { size?: unknown; error?: unknown } | null = null
  try {
    header = JSON.parse(decoder.decode(data.subarray(4, 4 + length)))
  } catch {
    // Worded below.
  }
  if (typeof header?.error === "string") return bad(`the blob server refused: ${header.error}`)
  if (typeof header?.size !== "number" || !Number.isSafeInteger(header.size) || header.size < 0) return bad("a blob answer's header names no size")
  return Either.right({ size: header.size, chunk: data.subarray(4 + length) })
}
