/**
 * A binary message with a JSON header: a 4-byte little-endian header length, the header's JSON,
 * then the body's bytes (a blob chunk, a tensor). Tensors and chunks travel without base64.
 */
import { Either, Schema } from "effect"

export class MalformedFrame extends Schema.TaggedError<MalformedFrame>()("MalformedFrame", { message: Schema.String }) {}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

export const frame = (header: object, body: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const h = encoder.encode(JSON.stringify(header))
  const out = new Uint8Array(4 + h.length + body.length)
  new DataView(out.buffer).setUint32(0, h.length, true)
  out.set(h, 4)
  out.set(body, 4 + h.length)
  return out
}

/** The header (parsed JSON, unchecked) and the body of a frame, or why it is not one. */
export const unframe = (data: Uint8Array): Either.Either<{ readonly header: unknown; readonly body: Uint8Array }, MalformedFrame> => {
  const bad = (message: string) => Either.left(new MalformedFrame({ message }))
  if (data.length < 4) return bad("a message is shorter than its length word")
  const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true)
  if (4 + length > data.length) return bad("a message's header runs past its end")
  try {
    return Either.right({ header: JSON.parse(decoder.decode(data.subarray(4, 4 + length))), body: data.subarray(4 + length) })
  } catch {
    return bad("a message's header is not JSON")
  }
}
