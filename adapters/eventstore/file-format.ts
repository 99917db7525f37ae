import * as fs from "node:fs"
import { crc32 } from "node:zlib"
import { Either } from "effect"
import { checkOwnHash, type Envelope } from "../../domain/ledger/envelope.ts"
import { canonicalize } from "../../domain/ledger/jcs.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { decodePayload } from "../verify/record-check.ts"
import { payloadChecksumMismatch } from "./record-decode.ts"
import type { ReadWindows } from "./read-windows.ts"

/**
 * The on-disk format of the file event store's segments (`events/<first seq>.seg`, see
 * `file-layout.ts`).
 *
 * A segment is a sequence of records, one envelope each, in seq order:
 *
 *   u32le word | u32le crc32(payload) | u32le crc32(the 8 bytes before) | payload
 *
 * `word` is the payload length in its low 31 bits; its top bit (CONTINUES) is set on every record
 * of an append except the last, so recovery can tell a whole append from part of one and keep
 * appends atomic across a crash. The payload is the UTF-8 JSON of the envelope.
 *
 * The header checksum makes a changed length (or flag) read as corruption instead of as a record
 * that runs past the end of the file, which is what a torn tail looks like.
 */
export const HEADER_BYTES = 12
export const CONTINUES = 0x8000_0000
export const MAX_PAYLOAD = 0x7fff_ffff

/** The CRC-32 (the polynomial of zlib's crc32) table, one entry per byte value. */
const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c
})

/**
 * crc32 of the 8 bytes at `pos` (a record header's length word and payload checksum), in place:
 * zlib's crc32 costs several times as much per call as eight table steps, on every record read.
 */
export const headerChecksum = (b: Uint8Array, pos: number): number => {
  let c = -1
  for (let i = pos; i < pos + 8; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** Frame the `length`-byte payload already at `pos + HEADER_BYTES` in `out`: its header goes at `pos`. */
const writeHeader = (out: Buffer, pos: number, length: number, continues: boolean): void => {
  if (length > MAX_PAYLOAD) throw new RangeError(`record of ${length} bytes exceeds the ${MAX_PAYLOAD}-byte limit`)
  out.writeUInt32LE((length | (continues ? CONTINUES : 0)) >>> 0, pos)
  out.writeUInt32LE(crc32(out.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length)), pos + 4)
  out.writeUInt32LE(headerChecksum(out, pos), pos + 8)
}

export const frameRecord = (payload: Uint8Array, continues: boolean): Buffer => {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length)
  out.set(payload, HEADER_BYTES)
  writeHeader(out, 0, payload.length, continues)
  return out
}

/**
 * An envelope's stored text: exactly its JSON.stringify (fields in the schema's order), written
 * out field by field, which costs half as much; encoding is on every append's path.
 */
export const recordText = (e: Envelope): string =>
  `{"seq":${e.seq},"stream":${canonicalize(e.stream)},"type":${canonicalize(e.type)},"version":${e.version},"at":${canonicalize(e.at)},${
    e.data === undefined ? "" : `"data":${JSON.stringify(e.data)},`
  }"prev":${canonicalize(e.prev)},"hash":${canonicalize(e.hash)}}`

/** The bytes a record of `text` takes, framed. */
export const framedBytes = (text: string): number => HEADER_BYTES + Buffer.byteLength(text, "utf8")

/**
 * Write one append's records, their texts framed and flagged so that only the last one ends it,
 * into `out` from `pos` (room for `framedBytes` of each); returns the position after them.
 */
export const writeAppend = (out: Buffer, pos: number, texts: ReadonlyArray<string>): number => {
  for (let i = 0; i < texts.length; i++) {
    const length = out.write(texts[i]!, pos + HEADER_BYTES, "utf8")
    writeHeader(out, pos, length, i < texts.length - 1)
    pos += HEADER_BYTES + length
  }
  return pos
}

/** The records of one append, each a view of one buffer. */
export const encodeAppend = (envelopes: ReadonlyArray<Envelope>): Buffer[] => {
  const texts = envelopes.map(recordText)
  const sizes = texts.map(framedBytes)
  const out = Buffer.allocUnsafe(sizes.reduce((n, b) => n + b, 0))
  writeAppend(out, 0, texts)
  let pos = 0
  return sizes.map((b) => out.subarray(pos, (pos += b)))
}

/** Random access to stored bytes. */
export interface ByteSource {
  readonly size: number
  /** Up to `len` bytes from `pos` (fewer only at the end). */
  read(pos: number, len: number): Buffer
}

/**
 * A file's first `size` bytes through a read window, so a scan makes few syscalls. A read before
 * the window places the next window to end where that read ends: walking back (a stream's events
 * through its back-pointers) is as cheap as walking forward. With `windows`, it reads into the
 * shared windows of a whole-log read (see read-windows.ts).
 */
export class SegmentReader implements ByteSource {
  private window: Buffer<ArrayBufferLike> = Buffer.alloc(0)
  private windowStart = 0
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly windowBytes = 4 << 20,
    private readonly windows?: ReadWindows
  ) {}

  read(pos: number, len: number): Buffer {
    if (pos >= this.windowStart && pos + len <= this.windowStart + this.window.length)
      return this.window.subarray(pos - this.windowStart, pos - this.windowStart + len)
    const start = pos < this.windowStart ? Math.max(0, Math.min(pos, pos + len - this.windowBytes)) : pos
    const want = Math.max(0, Math.min(Math.max(pos + len - start, this.windowBytes), this.size - start))
    // A new buffer each time (or one no payload handed out lies in any more): payloads handed out earlier stay valid.
    const buf = this.windows ? this.windows.take(want, this.window) : Buffer.allocUnsafe(want)
    let got = 0
    while (got < want) {
      const n = fs.readSync(this.fd, buf, got, want - got, start + got)
      if (n === 0) break
      got += n
    }
    this.window = buf.subarray(0, got)
    this.windowStart = start
    return this.window.subarray(pos - start, Math.min(pos - start + len, got))
  }
}

export class BufferSource implements ByteSource {
  constructor(private readonly bytes: Buffer) {}
  get size() {
    return this.bytes.length
  }
  read(pos: number, len: number): Buffer {
    return this.bytes.subarray(pos, pos + len)
  }
}

/** True when every byte from `pos` to the end is zero. */
const zeroFrom = (src: ByteSource, pos: number): boolean => {
  for (let p = pos; p < src.size; ) {
    const chunk = src.read(p, Math.min(1 << 20, src.size - p))
    if (chunk.length === 0) return true
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== 0) return false
    p += chunk.length
  }
  return true
}

/** `checksum` is the crc32 the payload must have: checked already unless the read was asked to leave it. */
export type Frame = { readonly offset: number; readonly bytes: number; readonly continues: boolean; readonly payload: Buffer; readonly checksum: number }

/** One step of reading frames: a whole record, the clean end, an incomplete tail, or damage. */
export type FrameStep =
  | { readonly _tag: "Frame"; readonly frame: Frame }
  | { readonly _tag: "End" }
  | { readonly _tag: "Torn"; readonly reason: string }
  | { readonly _tag: "Corrupt"; readonly reason: string }

/** The frame at `pos`; `checkPayload: false` leaves its payload's checksum to whoever decodes it. */
export const readFrame = (src: ByteSource, pos: number, checkPayload = true): FrameStep => {
  const left = src.size - pos
  if (left === 0) return { _tag: "End" }
  if (left < HEADER_BYTES) return { _tag: "Torn", reason: `${left} bytes, less than a record header` }
  const header = src.read(pos, HEADER_BYTES)
  if (header.length < HEADER_BYTES) return { _tag: "Torn", reason: `the file ends at byte ${pos + header.length}, inside a record header` }
  if (headerChecksum(header, 0) !== header.readUInt32LE(8)) {
    // A crash can leave a tail of zeros where the file grew but the data never landed (some
    // filesystems, on power loss). No record is all zeros (its header checksum would not be),
    // and no single changed byte can zero a record whole, so such a tail is torn, not damaged.
    if (zeroFrom(src, pos)) return { _tag: "Torn", reason: `${left} zero bytes` }
    return { _tag: "Corrupt", reason: `record header checksum mismatch at byte ${pos}` }
  }
  const word = header.readUInt32LE(0)
  const length = word & MAX_PAYLOAD
  if (HEADER_BYTES + length > left)
    return { _tag: "Torn", reason: `record at byte ${pos} needs ${length} payload bytes, ${left - HEADER_BYTES} present` }
  const payload = src.read(pos + HEADER_BYTES, length)
  if (payload.length < length) return { _tag: "Torn", reason: `the file ends inside the record at byte ${pos}` }
  const checksum = header.readUInt32LE(4)
  if (checkPayload && crc32(payload) !== checksum) return { _tag: "Corrupt", reason: payloadChecksumMismatch(pos) }
  return { _tag: "Frame", frame: { offset: pos, bytes: HEADER_BYTES + length, continues: (word & CONTINUES) !== 0, payload, checksum } }
}

/** Damage to the log at `seq`: the StoreFailure every check of the file store reports. */
export const corruptLog = (seq: number, reason: string) => new StoreFailure({ seq, reason: `corrupted event log: ${reason}` })

/** A run of whole appends, framed and checksummed but not yet decoded. */
export type FramedBatch = {
  readonly firstSeq: number
  readonly payloads: ReadonlyArray<Buffer>
  /** Where each record starts in its segment. */
  readonly offsets: ReadonlyArray<number>
  /** The byte after the batch's last record. */
  readonly end: number
  /** Each payload's checksum, when the scan left them to the decode. */
  readonly checksums: ReadonlyArray<number> | undefined
}

/** What lies after the last whole append of a segment: bytes a crash left mid-append. */
export type Tail = { readonly offset: number; readonly bytes: number; readonly reason: string }

/** The read window for records found through an index: one record, rarely more. */
export const RECORD_WINDOW = 16 << 10

/** How many payload bytes a scan hands to one bulk decode. */
export const BATCH_BYTES = 4 << 20

/**
 * Reads a segment's whole appends from a position, in batches of about `batchBytes`, checking
 * framing only. An incomplete last append ends the scan and is reported as `tail`; a record whose
 * checksums fail is a StoreFailure naming its seq. `checkPayloads: false` checks only the record
 * headers and hands each payload's checksum on with the batch, to be checked where it is decoded
 * (on worker threads, for a long read); only for logs whose end is known whole, since a damaged
 * payload in an unfinished last append then reads as that append's tail.
 */
export class AppendScanner {
  tail: Tail | undefined = undefined
  constructor(
    private readonly src: ByteSource,
    private pos: number,
    private seq: number,
    private readonly batchBytes = BATCH_BYTES,
    private readonly checkPayloads = true
  ) {}

  /** Where the scan stands: the byte after the last whole append read, and the next seq. */
  get point() {
    return { offset: this.pos, seq: this.seq }
  }

  /** The next batch, or undefined at the end. */
  next(): Either.Either<FramedBatch | undefined, StoreFailure> {
    const payloads: Buffer[] = []
    const offsets: number[] = []
    const checksums: number[] = []
    let whole = 0
    let wholeEnd = this.pos
    let p = this.pos
    let bytes = 0
    // Stop only between appends, so that a batch never splits one.
    while (bytes < this.batchBytes || payloads.length > whole) {
      const step = readFrame(this.src, p, this.checkPayloads)
      if (step._tag === "Corrupt") return Either.left(corruptLog(this.seq + payloads.length, step.reason))
      if (step._tag !== "Frame") {
        const reason = step._tag === "Torn" ? step.reason : "an append ends without its last record"
        this.tail = wholeEnd < this.src.size ? { offset: wholeEnd, bytes: this.src.size - wholeEnd, reason } : undefined
        break
      }
      payloads.push(step.frame.payload)
      offsets.push(p)
      checksums.push(step.frame.checksum)
      p += step.frame.bytes
      bytes += step.frame.bytes
      if (!step.frame.continues) {
        whole = payloads.length
        wholeEnd = p
      }
    }
    if (whole === 0) return Either.right(undefined)
    const batch = {
      firstSeq: this.seq,
      payloads: payloads.slice(0, whole),
      offsets: offsets.slice(0, whole),
      end: wholeEnd,
      checksums: this.checkPayloads ? undefined : checksums.slice(0, whole)
    }
    this.pos = wholeEnd
    this.seq += whole
    return Either.right(batch)
  }
}

/**
 * Decode one record on its own, found through the index rather than by reading the chain up to
 * it: its envelope schema, that it is the envelope at `seq`, its own hash, and the shared genesis
 * at seq 0. Its links to its neighbours are verified by whole-log reads.
 */
export const decodeRecordAt = (payload: Uint8Array, seq: number): Either.Either<Envelope, StoreFailure> => {
  const corrupt = (reason: string) => Either.left(corruptLog(seq, reason))
  const decoded = decodePayload(payload, seq)
  if (Either.isLeft(decoded)) return corrupt(decoded.left)
  const env = decoded.right
  if (env.seq !== seq) return corrupt(`expected seq ${seq}, found ${env.seq}`)
  const own = checkOwnHash(env)
  if (Either.isLeft(own)) return corrupt(own.left.reason)
  if (seq === 0 && env.hash !== GENESIS_HASH) return corrupt("seq 0 is not the genesis covenant every install shares")
  return Either.right(env)
}

/** A record as stored, before any interpretation beyond its framing; for audit tools. */
export type RawRecord = {
  readonly seq: number
  /** The segment file that holds it, and where in it. */
  readonly segment: string
  readonly offset: number
  readonly bytes: number
  readonly continues: boolean
  readonly text: string
}

export type SegmentInspection = {
  readonly size: number
  readonly records: ReadonlyArray<RawRecord>
  /** Why reading stopped before the end of the log, if it did. */
  readonly stop:
    | { readonly kind: "torn" | "corrupt"; readonly seq: number; readonly segment: string; readonly offset: number; readonly reason: string }
    | undefined
}

/**
 * Framing-level walk of one segment whose first record is `firstSeq`: every record whose checksums
 * hold, up to the first that does not.
 */
export const inspectSegment = (src: ByteSource, segment: string, firstSeq: number): SegmentInspection => {
  const records: RawRecord[] = []
  let pos = 0
  for (;;) {
    const step = readFrame(src, pos)
    const seq = firstSeq + records.length
    if (step._tag === "End") return { size: src.size, records, stop: undefined }
    if (step._tag !== "Frame")
      return { size: src.size, records, stop: { kind: step._tag === "Torn" ? "torn" : "corrupt", seq, segment, offset: pos, reason: step.reason } }
    const { frame } = step
    records.push({ seq, segment, offset: pos, bytes: frame.bytes, continues: frame.continues, text: frame.payload.toString("utf8") })
    pos += frame.bytes
  }
}
