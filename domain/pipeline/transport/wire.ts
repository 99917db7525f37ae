/**
 * The pipeline transport's messages: a chunk is a frame (see domain/network/frames.ts) with its
 * header as JSON and its bytes as the body; the receiver's answer to each is an acknowledgement,
 * a refusal (with whether sending again may help), or backpressure (its buffer is full: wait).
 */
import { Either, Schema } from "effect"
import { frame, unframe } from "../../network/frames.ts"
import { ChunkHeader, ChunkRefused, type Chunk } from "./chunks.ts"

export const encodeChunk = (c: Chunk): Uint8Array => frame(c.header, c.body)

const decodeHeader = Schema.decodeUnknownEither(ChunkHeader, { onExcessProperty: "error" })

/** A chunk, or why the message is none (never worth sending again as it was). */
export const decodeChunk = (data: Uint8Array): Either.Either<Chunk, ChunkRefused> =>
  Either.flatMap(
    Either.mapLeft(unframe(data), (e) => new ChunkRefused({ message: e.message, retry: false })),
    ({ header, body }) =>
      Either.match(decodeHeader(header), {
        onLeft: () => Either.left(new ChunkRefused({ message: "a chunk's header must name its transfer, index, total, size, whole and own sha256, and encoding", retry: false })),
        onRight: (h) => Either.right({ header: h, body })
      })
  )

export const ChunkAnswer = Schema.Union(
  Schema.Struct({ ack: Schema.Literal("stored", "duplicate", "complete") }),
  Schema.Struct({ refused: Schema.String, retry: Schema.Boolean }),
  Schema.Struct({ backpressure: Schema.String })
)
export type ChunkAnswer = typeof ChunkAnswer.Type

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const encodeChunkAnswer = (a: ChunkAnswer): Uint8Array => encoder.encode(JSON.stringify(a))

const decodeAnswer = Schema.decodeUnknownEither(Schema.parseJson(ChunkAnswer))

/** The receiver's answer, or undefined when it is not one (a receiver speaking another protocol). */
export const decodeChunkAnswer = (data: Uint8Array): ChunkAnswer | undefined => Either.getOrUndefined(decodeAnswer(decoder.decode(data)))
