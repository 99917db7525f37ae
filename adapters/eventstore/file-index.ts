import { crc32 } from "node:zlib"
import { Either, Schema } from "effect"
import { frameRecord, readFrame, type ByteSource } from "./file-format.ts"

/**
 * The on-disk index of one segment, `events/<first seq>.idx`. It is derived data: made from the
 * segment, checked against it on open, and rebuilt from it whenever they disagree.
 *
 *   header   "BLYIDX01" | u64le first seq of the segment                          16 bytes
 *   entries  one per event of the segment, in seq order                        20 bytes each
 *              u48le  where the event's record starts in the segment
 *              u48le  1 + the seq of the previous event of the same stream (0: none), so that
 *                     a stream is read by following these pointers back from its last event
 *              u32le  the event's revision in its stream (0-based)
 *              u32le  crc32 of those 16 bytes, seeded with the event's seq: a damaged entry,
 *                     or one read at the wrong position, fails its check
 *   summary  once the segment is sealed (the log moved on to the next segment): one record,
 *            framed as in a segment (file-format.ts), whose payload is the JSON of a
 *            SegmentSummary: the seq after the segment's last event, that event's hash, and the
 *            last seq and revision of every stream the segment touched
 *
 * Entries are written after the records they describe are synced and are not themselves synced
 * (a crash can leave them short or damaged, which open detects); the summary is synced when a
 * segment is sealed. Folding the summaries of the sealed segments gives every stream's revision
 * and last seq without reading the events.
 */
export const INDEX_HEADER_BYTES = 16
/** The read window for index files: a few thousand entries. */
export const INDEX_BLOCK = 64 << 10
export const ENTRY_BYTES = 20
const MAGIC = Buffer.from("BLYIDX01", "latin1")
const NONE = 0

export type IndexEntry = {
  /** Where the record starts in its segment. */
  readonly offset: number
  /** The seq of the previous event of the same stream; -1 for a stream's first event. */
  readonly prev: number
  readonly revision: number
}

/** Where the entry of `seq` lies in the index of the segment starting at `first`. */
export const entryPosition = (first: number, seq: number) => INDEX_HEADER_BYTES + ENTRY_BYTES * (seq - first)

export const encodeIndexHeader = (first: number): Buffer => {
  const out = Buffer.alloc(INDEX_HEADER_BYTES)
  MAGIC.copy(out, 0)
  out.writeUIntLE(first, 8, 6)
  return out
}

export const indexHeaderMatches = (bytes: Buffer, first: number): boolean =>
  bytes.length >= INDEX_HEADER_BYTES && MAGIC.equals(bytes.subarray(0, 8)) && bytes.readUIntLE(8, 6) === first && bytes.readUInt16LE(14) === 0

export const writeEntry = (out: Buffer, at: number, seq: number, e: IndexEntry): void => {
  out.writeUIntLE(e.offset, at, 6)
  out.writeUIntLE(e.prev < 0 ? NONE : e.prev + 1, at + 6, 6)
  out.writeUInt32LE(e.revision, at + 12)
  out.writeUInt32LE(crc32(out.subarray(at, at + 16), seq >>> 0), at + 16)
}

/** The entry of `seq` stored at `at`, or undefined when it is short or fails its checksum. */
export const readEntry = (bytes: Buffer, at: number, seq: number): IndexEntry | undefined => {
  if (at + ENTRY_BYTES > bytes.length) return undefined
  if (crc32(bytes.subarray(at, at + 16), seq >>> 0) !== bytes.readUInt32LE(at + 16)) return undefined
  const prev = bytes.readUIntLE(at + 6, 6)
  return { offset: bytes.readUIntLE(at, 6), prev: prev === NONE ? -1 : prev - 1, revision: bytes.readUInt32LE(at + 12) }
}

/** Entries for consecutive seqs from `firstSeq`, as stored. */
export const encodeEntries = (firstSeq: number, entries: ReadonlyArray<IndexEntry>): Buffer => {
  const out = Buffer.allocUnsafe(entries.length * ENTRY_BYTES)
  entries.forEach((e, i) => writeEntry(out, i * ENTRY_BYTES, firstSeq + i, e))
  return out
}

/** What a sealed segment did to the streams: enough to know every stream's position without reading events. */
export const SegmentSummary = Schema.Struct({
  /** The seq after the segment's last event: the first seq of the next segment. */
  end: Schema.Int,
  /** The hash of the segment's last event. */
  last: Schema.String,
  /** `[stream, last seq, revision]` for each stream with events in the segment. */
  streams: Schema.Array(Schema.Tuple(Schema.String, Schema.Int, Schema.Int))
})
export type SegmentSummary = typeof SegmentSummary.Type

export const encodeSummary = (s: SegmentSummary): Buffer => frameRecord(Buffer.from(JSON.stringify(s), "utf8"), false)

const decodeSummaryJson = Schema.decodeUnknownEither(Schema.parseJson(SegmentSummary))

/** The summary stored at `at`, if a whole, well-formed one is there. */
export const readSummary = (src: ByteSource, at: number): SegmentSummary | undefined => {
  const step = readFrame(src, at)
  if (step._tag !== "Frame" || step.frame.continues) return undefined
  const decoded = decodeSummaryJson(step.frame.payload.toString("utf8"))
  return Either.isRight(decoded) ? decoded.right : undefined
}
