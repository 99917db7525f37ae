/**
 * Experts' forward passes on the bus: one request asks one node (or one expert's queue group)
 * for one or more experts of the same layer, so that a layer's experts on one node cost one round
 * trip. The request is a frame (see frames.ts) whose header lists the items (each with its own
 * request id, the expert, the block the caller expects and its row count), with the items' input
 * rows one after another as float32 little-endian bytes ([rows, dModel] each); the answer's header
 * carries the node's receipt for each item, in order (or `{error}`), its body the output rows.
 */
import { Either, Schema } from "effect"
import { frame, unframe } from "./frames.ts"
import { Receipt } from "./receipts.ts"

export class MalformedExpertMessage extends Schema.TaggedError<MalformedExpertMessage>()("MalformedExpertMessage", { message: Schema.String }) {}

/** The most experts one request may ask for: every expert of a layer, in any model this runs. */
export const MAX_ITEMS = 256

export const ExpertItem = Schema.Struct({
  requestId: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  expert: Schema.Int.pipe(Schema.nonNegative()),
  block: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  rows: Schema.Int.pipe(Schema.positive())
})
export type ExpertItem = typeof ExpertItem.Type

export const ExpertRequestHeader = Schema.Struct({ items: Schema.Array(ExpertItem).pipe(Schema.minItems(1), Schema.maxItems(MAX_ITEMS)) })
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

export const encodeExpertRequest = (items: ReadonlyArray<ExpertItem>, inputs: ReadonlyArray<Uint8Array>) => frame({ items }, concat(inputs))

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** `body` cut into one piece per item, `rows × width` float32 each, or undefined when its length is not their sum. */
export const splitRows = (body: Uint8Array, items: ReadonlyArray<{ readonly rows: number }>, width: number): ReadonlyArray<Uint8Array> | undefined => {
  const sizes = items.map((i) => i.rows * width * 4)
  if (sizes.reduce((n, s) => n + s, 0) !== body.length) return undefined
  let at = 0
  return sizes.map((size) => body.subarray(at, (at += size)))
}

const decodeHeader = Schema.decodeUnknownEither(ExpertRequestHeader, { onExcessProperty: "error" })

export const decodeExpertRequest = (data: Uint8Array): Either.Either<{ readonly items: ReadonlyArray<ExpertItem>; readonly body: Uint8Array }, MalformedExpertMessage> =>
  Either.flatMap(Either.mapLeft(unframe(data), (e) => new MalformedExpertMessage({ message: e.message })), ({ header, body }) =>
    Either.mapBoth(decodeHeader(header), {
      onLeft: () => new MalformedExpertMessage({ message: `an expert request's header must be {items: [{requestId, expert, block, rows}], 1 to ${MAX_ITEMS} of them}` }),
      onRight: (h) => ({ items: h.items, body })
    })
  )

export const encodeExpertAnswer = (receipts: ReadonlyArray<Receipt>, outputs: ReadonlyArray<Uint8Array>) => frame({ receipts }, concat(outputs))
export const encodeExpertRefusal = (reason: string) => frame({ error: reason })

const decodeReceiptsHeader = Schema.decodeUnknownEither(Schema.Struct({ receipts: Schema.Array(Receipt) }), { onExcessProperty: "error" })

export const decodeExpertAnswer = (data: Uint8Array): Either.Either<{ readonly receipts: ReadonlyArray<Receipt>; readonly body: Uint8Array }, MalformedExpertMessage> =>
  Either.flatMap(Either.mapLeft(unframe(data), (e) => new MalformedExpertMessage({ message: e.message })), ({ header, body }) => {
    const error = (header as { error?: unknown } | null)?.error
    if (typeof error === "string") return Either.left(new MalformedExpertMessage({ message: `the node refused: ${error}` }))
    return Either.mapBoth(decodeReceiptsHeader(header), {
      onLeft: () => new MalformedExpertMessage({ message: "an expert answer carries no well-formed receipts" }),
      onRight: ({ receipts }) => ({ receipts, body })
    })
  })
