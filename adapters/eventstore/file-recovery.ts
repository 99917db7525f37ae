import * as fs from "node:fs"
import { Effect, Either } from "effect"
import type { Head } from "../../domain/ledger/envelope.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"
import { storeFailure as failure } from "../failure.ts"
import { corruptLog, decodeRecordAt, readFrame, RECORD_WINDOW, SegmentReader, type Tail } from "./file-format.ts"
import {
  ENTRY_BYTES,
  encodeIndexHeader,
  INDEX_BLOCK,
  entryPosition,
  INDEX_HEADER_BYTES,
  indexHeaderMatches,
  readEntry,
  readSummary,
  type IndexEntry,
  type SegmentSummary
} from "./file-index.ts"
import { writeAllSync, type Segment } from "./file-layout.ts"
import type { MemoryIndex } from "./file-reading.ts"
import { headOf, indexAppends, rebuildSealed, writeSealedIndex, type IndexSink } from "./file-rebuild.ts"
import { StreamTable } from "./file-streams.ts"

/** What open learns about the log, without reading its events (see `recoverLog`). */
export type Recovered = {
  readonly streams: StreamTable
  /** The streams with events in the last segment: its summary's list once it is sealed. */
  readonly touched: Set<string>
  readonly head: Head | undefined
  /** The next seq, and the byte after the last whole append of the last segment. */
  readonly end: { readonly seq: number; readonly offset: number }
  /** An incomplete last append after `end`, left by a crash: a writer cuts it off. */
  readonly tail: Tail | undefined
  /** Indexes a read-only open rebuilt in memory, by segment. */
  readonly memory: Map<number, MemoryIndex>
}

/** Run `f` with `file` open for reading; `undefined` when it does not exist. */
const withFile = <A>(file: string, f: (fd: number) => A): A | undefined => {
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
  try {
    return f(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const reader = (fd: number, window?: number) => new SegmentReader(fd, fs.fstatSync(fd).size, window)

/**
 * The cheap check of a sealed segment against its index: the index holds an entry for each of its
 * events, the last entry points at the segment's last record, which is the expected event and
 * ends the file, and the summary matches that event. Reads a few hundred bytes, not the events.
 * Says why not, when it does not check out.
 */
const checkSealed = (s: Segment, next: number): { readonly summary: SegmentSummary; readonly last: Head } | string =>
  withFile(s.index, (ifd) => {
    const idx = reader(ifd, RECORD_WINDOW)
    if (!indexHeaderMatches(idx.read(0, INDEX_HEADER_BYTES), s.first)) return "its header does not name the segment"
    const lastSeq = next - 1
    const e = readEntry(idx.read(entryPosition(s.first, lastSeq), ENTRY_BYTES), 0, lastSeq)
    if (!e) return `it has no sound entry for seq ${lastSeq}, the segment's last`
    const found = withFile(s.file, (sfd) => {
      const seg = reader(sfd, RECORD_WINDOW)
      const step = readFrame(seg, e.offset)
      if (step._tag !== "Frame" || step.frame.continues || e.offset + step.frame.bytes !== seg.size)
        return `its last entry does not point at the record that ends the segment`
      const env = decodeRecordAt(step.frame.payload, lastSeq)
      return Either.isLeft(env) ? `the record its last entry points at does not check out (${env.left.message})` : headOf(env.right)
    })
    if (found === undefined || typeof found === "string") return found ?? "the segment is gone"
    const summary = readSummary(idx, entryPosition(s.first, next))
    const sound =
      summary !== undefined &&
      summary.end === next &&
      summary.last === found.hash &&
      summary.streams.every(([, last, revision]) => last >= s.first && last < next && revision >= 0)
    return sound ? { summary, last: found } : "its summary is missing or does not match the segment"
  }) ?? "it is missing"

type Prefix = { readonly count: number; readonly end: number; readonly head: Head | undefined; readonly streams: StreamTable; readonly touched: Set<string> }

/**
 * How much of the last segment's index can be trusted, and the streams after it: entries with
 * sound checksums and offsets rising through the segment, the last of them at a record that ends
 * an append and is the expected event, each entry continuing a stream where the one before left
 * it (a stream's first event is read to learn its name). Anything else: none of it.
 */
const lastPrefix = (s: Segment, seg: SegmentReader, before: StreamTable, prev: Head | undefined): Prefix => {
  const none: Prefix = { count: 0, end: 0, head: prev, streams: new StreamTable(before), touched: new Set() }
  return (
    withFile(s.index, (ifd) => {
      const idx = reader(ifd, INDEX_BLOCK)
      if (!indexHeaderMatches(idx.read(0, INDEX_HEADER_BYTES), s.first)) return none
      const entryOf = (seq: number) => readEntry(idx.read(entryPosition(s.first, seq), ENTRY_BYTES), 0, seq)
      const available = Math.floor((idx.size - INDEX_HEADER_BYTES) / ENTRY_BYTES)
      let count = 0
      for (let lastOffset = -1; count < available; count++) {
        const seq = s.first + count
        const e = entryOf(seq)
        if (!e || e.offset <= lastOffset || (count === 0 && e.offset !== 0) || e.offset >= seg.size || e.prev >= seq) break
        lastOffset = e.offset
      }
      // The last entry must be the expected event, at a record that ends an append.
      let end = 0
      let head = prev
      while (count > 0) {
        const seq = s.first + count - 1
        const e = entryOf(seq)!
        const step = readFrame(seg, e.offset)
        if (step._tag !== "Frame") return none
        if (step.frame.continues) {
          count--
          continue
        }
        const env = decodeRecordAt(step.frame.payload, seq)
        if (Either.isLeft(env)) return none
        end = e.offset + step.frame.bytes
        head = headOf(env.right)
        break
      }
      // Follow the entries forward through the streams.
      const streams = new StreamTable(before)
      const touched = new Set<string>()
      const byLast = streams.byLastSeq()
      for (let i = 0; i < count; i++) {
        const seq = s.first + i
        const e: IndexEntry = entryOf(seq)!
        let stream: string | undefined
        if (e.prev < 0) {
          const step = readFrame(seg, e.offset)
          const env = step._tag === "Frame" ? decodeRecordAt(step.frame.payload, seq) : undefined
          stream = env && Either.isRight(env) && e.revision === 0 && !streams.get(env.right.stream) ? env.right.stream : undefined
        } else {
          stream = byLast.get(e.prev)
          if (stream !== undefined && streams.revision(stream) !== e.revision - 1) stream = undefined
          byLast.delete(e.prev)
        }
        if (stream === undefined) return none
        streams.advance(stream, seq, e.offset)
        byLast.set(seq, stream)
        touched.add(stream)
      }
      return { count, end, head, streams, touched }
    }) ?? none
  )
}

/**
 * Open-time recovery of a segmented log. The segments are the truth; their indexes are checked
 * against them and rebuilt where they disagree (missing, short, damaged, stale):
 *
 * - each sealed segment by the cheap check above, its summary then giving the streams' positions;
 * - the last segment's index entries one by one (they are few: one segment's worth);
 * - then the records of the last segment beyond its index (normally none, or the last batch a
 *   crash kept from being indexed) are read and verified as links of the chain, and indexed.
 *
 * No other event is read: whole-log verification is `readRange` from seq 0 (audit). A writer
 * writes what it rebuilds; a read-only open keeps it in memory. An incomplete last append is
 * reported as `tail`.
 */
export const recoverLog = (segments: ReadonlyArray<Segment>, writable: boolean): Effect.Effect<Recovered, StoreFailure> =>
  Effect.gen(function* () {
    const memory = new Map<number, MemoryIndex>()
    const streams = new StreamTable()
    if (segments.length === 0) return { streams, touched: new Set(), head: undefined, end: { seq: 0, offset: 0 }, tail: undefined, memory }
    const first = segments[0]!
    if (first.first !== 0) return yield* corruptLog(0, `the first segment, ${first.file}, starts at seq ${first.first}`)

    let prev: Head | undefined
    for (let k = 0; k < segments.length - 1; k++) {
      const s = segments[k]!
      const next = segments[k + 1]!.first
      const checked = yield* io(`cannot read ${s.index}`, () => checkSealed(s, next))
      if (typeof checked !== "string") {
        streams.apply(checked.summary)
        prev = checked.last
        continue
      }
      yield* Effect.logWarning(`event log index ${s.index}: ${checked}; rebuilding it from ${s.file}`)
      const after = prev
      const build = (sink: IndexSink) => withSegment(s, (fd) => rebuildSealed(reader(fd), s.file, s.first, next, after, streams, sink))
      if (writable) prev = (yield* writeSealedIndex(s.index, s.first, build)).last
      else {
        const entries: Buffer[] = []
        const built = yield* build((b) => void entries.push(b))
        memory.set(s.first, { from: s.first, entries: Buffer.concat(entries), summary: built.summary })
        prev = built.last
      }
    }
    return yield* recoverLast(segments[segments.length - 1]!, streams, prev, writable, memory)
  })

const io = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: failure(what) })

const withSegment = <A, E>(s: Segment, use: (fd: number) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    io(`cannot open ${s.file}`, () => fs.openSync(s.file, "r")),
    use,
    (fd) => Effect.sync(() => fs.closeSync(fd))
  )

/** The last segment: its index's sound prefix, then its records beyond it, read, verified and indexed. */
const recoverLast = (last: Segment, before: StreamTable, prev: Head | undefined, writable: boolean, memory: Map<number, MemoryIndex>) =>
  withSegment(last, (fd) =>
    Effect.gen(function* () {
      const seg = reader(fd)
      // Where entries point, records are read one by one: through a small window.
      const prefix = yield* io(`cannot read ${last.index}`, () => lastPrefix(last, new SegmentReader(fd, seg.size, RECORD_WINDOW), before, prev))
      if (prefix.count === 0 && seg.size > 0 && fs.existsSync(last.index))
        yield* Effect.logWarning(`event log index ${last.index} does not match ${last.file}: rebuilding it from the segment`)
      const start = { offset: prefix.end, seq: last.first + prefix.count }
      const scan = (sink: IndexSink) => indexAppends(seg, start, prefix.head, prefix.streams, prefix.touched, sink)
      const scanned = writable
        ? // The index keeps its sound prefix and is written on from there.
          yield* Effect.acquireUseRelease(
            io(`cannot open ${last.index}`, () => fs.openSync(last.index, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)),
            (ifd) =>
              Effect.gen(function* () {
                let size = entryPosition(last.first, start.seq)
                yield* io(`cannot write ${last.index}`, () => {
                  fs.ftruncateSync(ifd, size)
                  writeAllSync(ifd, encodeIndexHeader(last.first), 0)
                })
                return yield* scan((b) => {
                  writeAllSync(ifd, b, size)
                  size += b.length
                })
              }),
            (ifd) => Effect.sync(() => fs.closeSync(ifd))
          )
        : yield* Effect.gen(function* () {
            const entries: Buffer[] = []
            const r = yield* scan((b) => void entries.push(b))
            if (entries.length > 0) memory.set(last.first, { from: start.seq, entries: Buffer.concat(entries), summary: undefined })
            return r
          })
      return { streams: prefix.streams, touched: prefix.touched, head: scanned.head, end: scanned.end, tail: scanned.tail, memory } satisfies Recovered
    })
  )
