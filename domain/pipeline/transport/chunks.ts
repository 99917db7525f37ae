/**
 * A tensor's bytes as chunks on the pipeline's transport, and their reassembly. Every chunk names
 * its transfer, its index among `total`, its own sha256 and that of the whole payload; the
 * receiver keeps chunks by index (a duplicate changes nothing, a corrupt one is refused for the
 * sender to send again) and hands the payload over only once it hashes to what every chunk said.
 */
import { Either, Schema } from "effect"
import { sha256Hex } from "../../ledger/hash.ts"

export const Encoding = Schema.Literal("none", "gzip")
export type Encoding = typeof Encoding.Type

export const ChunkHeader = Schema.Struct({
  transfer: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.:-]{1,128}$/)),
  index: Schema.Int.pipe(Schema.nonNegative()),
  total: Schema.Int.pipe(Schema.positive()),
  /** The whole payload's length and sha256, as sent (after compression). */
  size: Schema.Int.pipe(Schema.nonNegative()),
  whole: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  sha256: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  encoding: Encoding
})
export type ChunkHeader = typeof ChunkHeader.Type

export type Chunk = { readonly header: ChunkHeader; readonly body: Uint8Array }

/** A chunk the receiver cannot take: `retry` when sending it again may succeed (its bytes were damaged on the way). */
export class ChunkRefused extends Schema.TaggedError<ChunkRefused>()("ChunkRefused", { message: Schema.String, retry: Schema.Boolean }) {}

/** `payload` (already encoded as `encoding` says) cut into chunks of at most `chunkBytes`; an empty payload is one empty chunk. */
export const splitChunks = (transfer: string, payload: Uint8Array, chunkBytes: number, encoding: Encoding): ReadonlyArray<Chunk> => {
  const total = Math.max(1, Math.ceil(payload.length / chunkBytes))
  const whole = sha256Hex(payload)
  return Array.from({ length: total }, (_, index) => {
    const body = payload.subarray(index * chunkBytes, Math.min(payload.length, (index + 1) * chunkBytes))
    return { header: { transfer, index, total, size: payload.length, whole, sha256: sha256Hex(body), encoding }, body }
  })
}

export type Accepted =
  | { readonly _tag: "Stored"; readonly held: number }
  | { readonly _tag: "Duplicate" }
  | { readonly _tag: "Complete"; readonly payload: Uint8Array; readonly encoding: Encoding }

const refuse = (message: string, retry: boolean) => Either.left(new ChunkRefused({ message, retry }))

/**
 * One transfer being put back together. The first chunk fixes what the transfer is (its count,
 * size, whole hash and encoding); a chunk saying otherwise is refused.
 */
export class Reassembly {
  private readonly parts = new Map<number, Uint8Array>()
  private heldBytes = 0
  private constructor(readonly first: ChunkHeader) {}

  static start(first: ChunkHeader): Reassembly {
    return new Reassembly(first)
  }

  /** Bytes held so far. */
  get held(): number {
    return this.heldBytes
  }

  /** Whether chunk `index` is already held. */
  has(index: number): boolean {
    return this.parts.has(index)
  }

  accept({ header, body }: Chunk): Either.Either<Accepted, ChunkRefused> {
    const f = this.first
    if (header.transfer !== f.transfer || header.total !== f.total || header.size !== f.size || header.whole !== f.whole || header.encoding !== f.encoding)
      return refuse(`chunk ${header.index} of ${header.transfer} disagrees with the transfer's first chunk`, false)
    if (header.index >= header.total) return refuse(`chunk index ${header.index} is not below its total ${header.total}`, false)
    if (sha256Hex(body) !== header.sha256) return refuse(`chunk ${header.index} of ${header.transfer} does not hash to its sha256`, true)
    if (this.parts.has(header.index)) return Either.right({ _tag: "Duplicate" })
    this.parts.set(header.index, body)
    this.heldBytes += body.length
    if (this.parts.size < header.total) return Either.right({ _tag: "Stored", held: this.heldBytes })
    const payload = new Uint8Array(this.heldBytes)
    let at = 0
    for (let i = 0; i < header.total; i++) {
      const part = this.parts.get(i)!
      payload.set(part, at)
      at += part.length
    }
    // Each chunk matched its own hash: a whole that does not is the sender's fault, not the wire's.
    if (payload.length !== header.size || sha256Hex(payload) !== header.whole) return refuse(`${header.transfer}: its ${header.total} chunks do not make the payload they name`, false)
    return Either.right({ _tag: "Complete", payload, encoding: header.encoding })
  }
}
