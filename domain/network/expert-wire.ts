/**
 * An expert's forward pass on the bus (`Subjects.expertForward`, request/reply in the expert's
 * queue group). The request is a frame (see frames.ts) whose header names the request and the
 * block the caller expects, with the input rows as float32 little-endian bytes ([rows, dModel]);
 * the answer's header carries the node's receipt (or `{error}`), its body the output rows.
 */
import { Either, Schema } from "effect"
import { frame, unframe } from "./frames.ts"
import { Receipt } from "./receipts.ts"

export class MalformedExpertMessage extends Schema.TaggedError<MalformedExpertMessage>()("MalformedExpertMessage", { message: Schema.String }) {}

export const ExpertRequestHeader = Schema.Struct({
  requestId: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  block: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  rows: Schema.Int.pipe(Schema.positive())
})
export type ExpertRequestHeader = typeof ExpertRequestHeader.Type

/** Float32 rows as the bytes they travel as (little-endian, whatever the host). */
export const rowBytes = (x: ArrayLike<number>): Uint8Array => {
  const out = new Uint8Array(x.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < x.length; i++) view.setFloat32(i * 4, x[i]!, true)
  return out
}

/** The float32 rows of `bytes`, or undefined when they are not whole rows of `width` or hold NaN or infinity. */
export const rowsOf = (bytes: Uint8Array, rows: number, width: number): Float32Array | undefined => {
  if (bytes.length !== rows * width * 4) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Float32Array(rows * width)
  for (let i = 0; i < out.length; i++) {
    const v = view.getFloat32(i * 4, true)
    if (!Number.isFinite(v)) return undefined
    out[i] = v
  }
  return out
}

export const encodeExpertRequest = (header: ExpertRequestHeader, input: Uint8Array) => frame(header, input)

const decodeHeader = Schema.decodeUnknownEither(ExpertRequestHeader, { onExcessProperty: "error" })

export const decodeExpertRequest = (data: Uint8Array): Either.Either<{ readonly header: ExpertRequestHeader; readonly input: Uint8Array }, MalformedExpertMessage> =>
  Either.flatMap(Either.mapLeft(unframe(data), (e) => new MalformedExpertMessage({ message: e.message })), ({ header, body }) =>
    Either.mapBoth(decodeHeader(header), {
      onLeft: () => new MalformedExpertMessage({ message: "an expert request's header must be {requestId, block, rows}" }),
      onRight: (h) => ({ header: h, input: body })
    })
  )

export const encodeExpertAnswer = (receipt: Receipt, output: Uint8Array) => frame({ receipt }, output)
export const encodeExpertRefusal = (reason: string) => frame({ error: reason })

const decodeReceiptHeader = Schema.decodeUnknownEither(Schema.Struct({ receipt: Receipt }), { onExcessProperty: "error" })

export const decodeExpertAnswer = (data: Uint8Array): Either.Either<{ readonly receipt: Receipt; readonly output: Uint8Array }, MalformedExpertMessage> =>
  Either.flatMap(Either.mapLeft(unframe(data), (e) => new MalformedExpertMessage({ message: e.message })), ({ header, body }) => {
    const error = (header as { error?: unknown } | null)?.error
    if (typeof error === "string") return Either.left(new MalformedExpertMessage({ message: `the node refused: ${error}` }))
    return Either.mapBoth(decodeReceiptHeader(header), {
      onLeft: () => new MalformedExpertMessage({ message: "an expert answer carries no well-formed receipt" }),
      onRight: ({ receipt }) => ({ receipt, output: body })
    })
  })
