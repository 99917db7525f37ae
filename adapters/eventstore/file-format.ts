import * as fs from "node:fs"
import { crc32 } from "node:zlib"
import { Either } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { decodeRecords } from "./record-decode.ts"

/**
 * The on-disk format of the file event store's segment (`events/log.seg`).
 *
 * The file is a sequence of records, one envelope each, in seq order:
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

export const frameRecord = (payload: Uint8Array, continues: boolean): Buffer => {
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`record of ${payload.length} bytes exceeds the ${MAX_PAYLOAD}-byte limit`)
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length)
  out.writeUInt32LE((payload.length | (continues ? CONTINUES : 0)) >>> 0, 0)
  out.writeUInt32LE(crc32(payload), 4)
  out.writeUInt32LE(crc32(out.subarray(0, 8)), 8)
  out.set(payload, HEADER_BYTES)
  return out
}

/** The records of one append, flagged so that only the last one ends it. */
export const encodeAppend = (envelopes: ReadonlyArray<Envelope>): Buffer[] =>
  envelopes.map((e, i) => frameRecord(Buffer.from(JSON.stringify(e), "utf8"), i < envelopes.length - 1))

/** Random access to the segment's bytes through a read window, so a scan makes few syscalls. */
export class SegmentReader {
  private window = Buffer.alloc(0)
  private windowStart = 0
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly windowBytes = 4 << 20
  ) {}

  read(pos: number, len: number): Buffer {
    if (pos >= this.windowStart && pos + len <= this.windowStart + this.window.length)
      return this.window.subarray(pos - this.windowStart, pos - this.windowStart + len)
    const want = Math.min(Math.max(len, this.windowBytes), this.size - pos)
    const buf = Buffer.allocUnsafe(want)
    let got = 0
    while (got < want) {
      const n = fs.readSync(this.fd, buf, got, want - got, pos + got)
      if (n === 0) break
      got += n
    }
    this.window = buf.subarray(0, got)
    this.windowStart = pos
    return this.window.subarray(0, Math.min(len, got))
  }

  /** True when every byte from `pos` to the end is zero. */
  zeroFrom(pos: number): boolean {
    for (let p = pos; p < this.size; ) {
      const n = Math.min(1 << 20, this.size - p)
      const chunk = this.read(p, n)
      for (let i = 0; i < chunk.length; i++) if (chunk[i] !== 0) return false
      p += n
    }
    return true
  }
}

export type Frame = { readonly offset: number; readonly bytes: number; readonly continues: boolean; readonly payload: Buffer }

/** One step of reading frames: a whole record, the clean end, an incomplete tail, or damage. */
export type FrameStep =
  | { readonly _tag: "Frame"; readonly frame: Frame }
  | { readonly _tag: "End" }
  | { readonly _tag: "Torn"; readonly reason: string }
  | { readonly _tag: "Corrupt"; readonly reason: string }

export const readFrame = (src: SegmentReader, pos: number): FrameStep => {
  const left = src.size - pos
  if (left === 0) return { _tag: "End" }
  if (left < HEADER_BYTES) return { _tag: "Torn", reason: `${left} bytes, less than a record header` }
  const header = src.read(pos, HEADER_BYTES)
  if (crc32(header.subarray(0, 8)) !== header.readUInt32LE(8)) {
    // A crash can leave a tail of zeros where the file grew but the data never landed (some
    // filesystems, on power loss). No record is all zeros (its header checksum would not be),
    // and no single changed byte can zero a record whole, so such a tail is torn, not damaged.
    if (src.zeroFrom(pos)) return { _tag: "Torn", reason: `${left} zero bytes` }
    return { _tag: "Corrupt", reason: `record header checksum mismatch at byte ${pos}` }
  }
  const word = header.readUInt32LE(0)
  const length = word & MAX_PAYLOAD
  if (HEADER_BYTES + length > left)
    return { _tag: "Torn", reason: `record at byte ${pos} needs ${length} payload bytes, ${left - HEADER_BYTES} present` }
  const payload = src.read(pos + HEADER_BYTES, length)
  if (crc32(payload) !== header.readUInt32LE(4)) return { _tag: "Corrupt", reason: `record payload checksum mismatch at byte ${pos}` }
  return { _tag: "Frame", frame: { offset: pos, bytes: HEADER_BYTES + length, continues: (word & CONTINUES) !== 0, payload } }
}

/** Where a scan stands: the byte after the last whole append, its next seq, and the chain head. */
export type ScanPoint = { readonly offset: number; readonly seq: number; readonly head: Head | undefined }
export const scanStart: ScanPoint = { offset: 0, seq: 0, head: undefined }

export type ScanResult = {
  /** Envelopes of the whole appends read, in seq order. */
  readonly envelopes: Envelope[]
  /** After the last whole append; everything beyond is an incomplete tail. */
  readonly end: ScanPoint
  readonly tail: { readonly offset: number; readonly bytes: number; readonly reason: string } | undefined
}

/**
 * Read and verify every record from `start`: framing checksums, envelope schema, hash chain, and
 * the shared genesis at seq 0. An incomplete last append is reported as `tail`; anything else
 * wrong is a StoreFailure naming the seq of the bad record, never a skip.
 */
export const scanSegment = (src: SegmentReader, start: ScanPoint): Either.Either<ScanResult, StoreFailure> => {
  const envelopes: Envelope[] = []
  let end = start
  let pending: Frame[] = []
  let pos = start.offset
  for (;;) {
    const step = readFrame(src, pos)
    if (step._tag === "Corrupt") return Either.left(new StoreFailure({ seq: end.seq + pending.length, reason: `corrupted event log: ${step.reason}` }))
    if (step._tag === "End" || step._tag === "Torn") {
      const reason = step._tag === "Torn" ? step.reason : `an append ends without its last record`
      const tail = end.offset < src.size ? { offset: end.offset, bytes: src.size - end.offset, reason } : undefined
      return Either.right({ envelopes, end, tail })
    }
    pending.push(step.frame)
    pos += step.frame.bytes
    if (!step.frame.continues) {
      // A whole append: verify it as the next links of the chain, then move the end past it.
      const decoded = decodeRecords(pending.map((f) => f.payload), end.seq, end.head)
      if (Either.isLeft(decoded)) return Either.left(decoded.left)
      for (const e of decoded.right) envelopes.push(e)
      const last = decoded.right[decoded.right.length - 1]!
      end = { offset: pos, seq: end.seq + pending.length, head: { seq: last.seq, hash: last.hash } }
      pending = []
    }
  }
}

/** A record as stored, before any interpretation beyond its framing; for audit tools. */
export type RawRecord = {
  readonly seq: number
  readonly offset: number
  readonly bytes: number
  readonly continues: boolean
  readonly text: string
}

export type SegmentInspection = {
  readonly size: number
  readonly records: ReadonlyArray<RawRecord>
  /** Why reading stopped before the end of the file, if it did. */
  readonly stop: { readonly kind: "torn" | "corrupt"; readonly seq: number; readonly offset: number; readonly reason: string } | undefined
}

/** Framing-level walk of a segment: every record whose checksums hold, up to the first that does not. */
export const inspectSegment = (src: SegmentReader): SegmentInspection => {
  const records: RawRecord[] = []
  let pos = 0
  for (;;) {
    const step = readFrame(src, pos)
    const seq = records.length
    if (step._tag === "End") return { size: src.size, records, stop: undefined }
    if (step._tag !== "Frame")
      return { size: src.size, records, stop: { kind: step._tag === "Torn" ? "torn" : "corrupt", seq, offset: pos, reason: step.reason } }
    const { frame } = step
    records.push({ seq, offset: pos, bytes: frame.bytes, continues: frame.continues, text: frame.payload.toString("utf8") })
    pos += frame.bytes
  }
}
