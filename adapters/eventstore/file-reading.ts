import * as fs from "node:fs"
import { Chunk, Effect, Either, Option, Stream } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { storeFailure as failure } from "../failure.ts"
import { AppendScanner, corruptLog, decodeRecordAt, readFrame, RECORD_WINDOW, SegmentReader } from "./file-format.ts"
import { ENTRY_BYTES, entryPosition, INDEX_BLOCK, readEntry, readSummary, type IndexEntry, type SegmentSummary } from "./file-index.ts"
import { legacySegmentPath, segmentPath, type Segment } from "./file-layout.ts"
import { decodeBatch, headOf, indexAppends, rebuildSealed, writeSealedIndex } from "./file-rebuild.ts"
import { finishRecordBatch, startRecordBatch, type RecordBatchInFlight } from "./record-decode.ts"
import { ReadWindows } from "./read-windows.ts"
import { StreamTable, type StreamPosition } from "./file-streams.ts"

/** Index entries held in memory in place of a segment's index file, from seq `from` on (read-only opens). */
export type MemoryIndex = { readonly from: number; readonly entries: Buffer; readonly summary: SegmentSummary | undefined }

/** What reads of a segmented log need to know about it. */
export interface LogFiles {
  readonly dir: string
  /** In seq order; a writer adds one on each roll. */
  readonly segments: ReadonlyArray<Segment>
  /** The committed size of the last segment: reads go no further. */
  readonly lastSize: () => number
  readonly memory: Map<number, MemoryIndex>
  /** A writer writes rebuilt indexes to disk; a read-only open keeps them in memory. */
  readonly writable: boolean
  /** One index rebuild at a time. */
  readonly repairs: Effect.Semaphore
}

/** An index disagrees with its segment at `seq`: the segment is the truth, so the index is rebuilt. */
class IndexDisagrees {
  constructor(
    readonly segment: number,
    readonly seq: number,
    readonly reason: string
  ) {}
}

/** The position in `segments` of the segment that holds `seq`. */
const segmentOf = (segments: ReadonlyArray<Segment>, seq: number): number => {
  let lo = 0
  let hi = segments.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (segments[mid]!.first <= seq) lo = mid
    else hi = mid - 1
  }
  return lo
}

/**
 * Random access to events through the indexes, for one operation: files are opened as needed and
 * all closed by `close`. Whatever does not check out throws IndexDisagrees.
 */
class Lookup {
  private readonly fds = new Map<string, number>()
  private readonly records = new Map<number, SegmentReader>()
  private readonly indexes = new Map<number, SegmentReader>()

  constructor(private readonly log: LogFiles) {}

  private open(file: string): number {
    let fd = this.fds.get(file)
    if (fd === undefined) {
      fd = fs.openSync(file, "r")
      this.fds.set(file, fd)
    }
    return fd
  }

  segmentOf(seq: number): number {
    return segmentOf(this.log.segments, seq)
  }

  disagree(seq: number, reason: string): never {
    throw new IndexDisagrees(this.segmentOf(seq), seq, reason)
  }

  private recordSource(k: number): SegmentReader {
    let src = this.records.get(k)
    if (!src) {
      const fd = this.open(this.log.segments[k]!.file)
      const size = k === this.log.segments.length - 1 ? this.log.lastSize() : fs.fstatSync(fd).size
      src = new SegmentReader(fd, size, RECORD_WINDOW)
      this.records.set(k, src)
    }
    return src
  }

  private indexSource(k: number): SegmentReader | undefined {
    let src = this.indexes.get(k)
    if (!src) {
      let fd: number
      try {
        fd = this.open(this.log.segments[k]!.index)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
        throw e
      }
      src = new SegmentReader(fd, fs.fstatSync(fd).size, INDEX_BLOCK)
      this.indexes.set(k, src)
    }
    return src
  }

  entry(seq: number): IndexEntry {
    const k = this.segmentOf(seq)
    const first = this.log.segments[k]!.first
    const mem = this.log.memory.get(first)
    let e: IndexEntry | undefined
    if (mem && seq >= mem.from) e = readEntry(mem.entries, (seq - mem.from) * ENTRY_BYTES, seq)
    else {
      const src = this.indexSource(k)
      e = src && readEntry(src.read(entryPosition(first, seq), ENTRY_BYTES), 0, seq)
    }
    return e ?? this.disagree(seq, "its index entry is missing or damaged")
  }

  /** The envelope at `seq`, checked on its own (see decodeRecordAt). */
  envelope(seq: number, entry: IndexEntry = this.entry(seq)): Envelope {
    const step = readFrame(this.recordSource(this.segmentOf(seq)), entry.offset)
    if (step._tag !== "Frame") return this.disagree(seq, `no whole record at byte ${entry.offset} of its segment`)
    const env = decodeRecordAt(step.frame.payload, seq)
    return Either.isRight(env) ? env.right : this.disagree(seq, env.left.reason)
  }

  summary(k: number): SegmentSummary | undefined {
    const s = this.log.segments[k]!
    const mem = this.log.memory.get(s.first)
    if (mem) return mem.summary
    const src = this.indexSource(k)
    const next = this.log.segments[k + 1]?.first
    const summary = src && next !== undefined ? readSummary(src, entryPosition(s.first, next)) : undefined
    return summary?.end === next ? summary : undefined
  }

  close() {
    for (const fd of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
  }
}

/** Run `op` with a fresh Lookup: its result, or the disagreement it ran into. Other errors are thrown. */
const runLookup = <A>(log: LogFiles, op: (lk: Lookup) => A): Either.Either<A, IndexDisagrees> => {
  const lk = new Lookup(log)
  try {
    return Either.right(op(lk))
  } catch (e) {
    if (e instanceof IndexDisagrees) return Either.left(e)
    throw e
  } finally {
    lk.close()
  }
}

const tryLookup = <A>(log: LogFiles, op: (lk: Lookup) => A) =>
  Effect.try({ try: () => runLookup(log, op), catch: failure(`cannot read the event log in ${log.dir}`) })

/**
 * Run `op` over the indexes; where an index disagrees with its segment, rebuild that index from
 * the segment and run it again. A disagreement that survives the rebuild (or a segment that fails
 * its own checks while being read to rebuild) is a StoreFailure naming the seq.
 */
const withIndexes = <A>(log: LogFiles, op: (lk: Lookup) => A, repaired = new Set<number>()): Effect.Effect<A, StoreFailure> =>
  Effect.gen(function* () {
    for (;;) {
      const r = yield* tryLookup(log, op)
      if (Either.isRight(r)) return r.right
      const d = r.left
      if (repaired.has(d.segment))
        return yield* corruptLog(d.seq, `${d.reason}, even after rebuilding the index of ${log.segments[d.segment]!.file} from it`)
      repaired.add(d.segment)
      yield* rebuildIndex(log, d.segment, d, repaired)
    }
  })

/** Rebuild segment k's index from the segment; the caller holds `log.repairs`. */
const rebuildIndex = (log: LogFiles, k: number, why: IndexDisagrees, repaired: Set<number>): Effect.Effect<void, StoreFailure> =>
  Effect.gen(function* () {
    const s = log.segments[k]!
    const last = k === log.segments.length - 1
    if (last && log.writable)
      return yield* new StoreFailure({
        seq: why.seq,
        reason: `the index of ${s.file}, the segment being written, disagrees with it at seq ${why.seq} (${why.reason}); reopening the store rebuilds it`
      })
    yield* Effect.logWarning(`event log index ${s.index} disagrees with its segment at seq ${why.seq} (${why.reason}): rebuilding it from the segment`)
    // Where the streams stood when the segment began, from the summaries of the segments before it.
    const streams = new StreamTable()
    for (let j = 0; j < k; j++) {
      const summary = yield* withIndexes(log, (lk) => lk.summary(j) ?? lk.disagree(log.segments[j + 1]!.first - 1, "its segment summary is missing or damaged"), repaired)
      streams.apply(summary)
    }
    const prev = k === 0 ? undefined : yield* withIndexes(log, (lk) => headOf(lk.envelope(s.first - 1)), repaired)
    yield* Effect.acquireUseRelease(
      Effect.try({ try: () => fs.openSync(s.file, "r"), catch: failure(`cannot open ${s.file}`) }),
      (fd) =>
        Effect.gen(function* () {
          const src = new SegmentReader(fd, last ? log.lastSize() : fs.fstatSync(fd).size)
          const entries: Buffer[] = []
          const collect = (b: Buffer) => void entries.push(b)
          if (last) {
            // A read-only open's last segment, up to where the open stopped reading.
            const r = yield* indexAppends(src, { offset: 0, seq: s.first }, prev, streams, new Set(), collect)
            if (r.tail || r.end.offset !== src.size) return yield* corruptLog(r.end.seq, `segment ${s.file} changed below the end read at open`)
            log.memory.set(s.first, { from: s.first, entries: Buffer.concat(entries), summary: undefined })
            return
          }
          const next = log.segments[k + 1]!.first
          if (log.writable) yield* writeSealedIndex(s.index, s.first, (sink) => rebuildSealed(src, s.file, s.first, next, prev, streams, sink))
          else {
            const built = yield* rebuildSealed(src, s.file, s.first, next, prev, streams, collect)
            log.memory.set(s.first, { from: s.first, entries: Buffer.concat(entries), summary: built.summary })
          }
        }),
      (fd) => Effect.sync(() => fs.closeSync(fd))
    )
  })

/** `op` over the indexes, rebuilding any that disagree with their segments (one rebuild at a time). */
const lookup = <A>(log: LogFiles, op: (lk: Lookup) => A): Effect.Effect<A, StoreFailure> =>
  // Most reads need no rebuild: they do not wait for the rebuild permit.
  Effect.flatMap(tryLookup(log, op), (r) => (Either.isRight(r) ? Effect.succeed(r.right) : log.repairs.withPermits(1)(withIndexes(log, op))))

/**
 * The events of `stream`, whose last event is at `position`, by following its back-pointers
 * through the indexes. Each is checked on its own (decodeRecordAt), and to be the stream's event
 * of the expected revision; the links of the whole chain are checked by `readRange`.
 */
export const readStream = (log: LogFiles, stream: string, position: StreamPosition | undefined): Effect.Effect<ReadonlyArray<Envelope>, StoreFailure> =>
  position === undefined
    ? Effect.succeed([])
    : lookup(log, (lk) => {
        const out: Envelope[] = []
        let seq = position.last
        let revision = position.revision
        while (seq >= 0) {
          const e = lk.entry(seq)
          if (e.revision !== revision) lk.disagree(seq, `its index entry says revision ${e.revision} of its stream, ${revision} was expected`)
          if (e.prev >= seq) lk.disagree(seq, `its index entry points forward, to seq ${e.prev}`)
          const env = lk.envelope(seq, e)
          if (env.stream !== stream) lk.disagree(seq, `it belongs to ${env.stream}, not ${stream}`)
          out.push(env)
          seq = e.prev
          revision--
        }
        if (revision !== -1) lk.disagree(position.last, `${stream} has ${position.revision + 1} events but its index chain holds ${out.length}`)
        return out.reverse()
      })

/**
 * A whole-log read's batches: small enough that the envelopes of the two in hand die young, large
 * enough that handing one to the workers costs little beside checking it.
 */
const READ_BATCH_BYTES = 512 << 10
const BATCHES_AHEAD = 4
const READ_WINDOW = 4 << 20

/** The one segment a read has open at a time: closed when it moves to the next, and when the read ends. */
const currentFile = () => {
  let fd: number | undefined
  return {
    set: (next: number) => {
      if (fd !== undefined) fs.closeSync(fd)
      fd = next
    },
    close: Effect.sync(() => {
      if (fd !== undefined) fs.closeSync(fd)
      fd = undefined
    })
  }
}

const openSync = (file: string) => Effect.try({ try: () => fs.openSync(file, "r"), catch: failure(`cannot open ${file}`) })

/**
 * The log from `fromSeq` to `endSeq()` (exclusive, taken when the read starts), streamed from disk in batches: memory holds one
 * batch whatever the length of the log. Every record is verified as the next link of the chain
 * (framing, schema, position, back-pointer, own hash, genesis), across segments too; the first
 * that fails ends the stream with a StoreFailure naming its seq.
 */
export const readRange = (log: LogFiles, fromSeq: number, end: () => number): Stream.Stream<Envelope, StoreFailure> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      // Taken together, before anything yields: the head, the last segment and its committed size.
      const endSeq = end()
      const lastK = log.segments.length - 1
      const lastSize = log.lastSize()
      const from = Math.max(0, fromSeq)
      if (from >= endSeq) return Stream.empty
      const start = yield* lookup(log, (lk) => {
        const k = lk.segmentOf(from)
        const first = log.segments[k]!.first
        return {
          k,
          offset: from === first ? 0 : lk.entry(from).offset,
          prev: from === 0 ? undefined : headOf(lk.envelope(from - 1))
        }
      })
      let k = start.k
      let prev: Head | undefined = start.prev
      const fd = currentFile()
      yield* Effect.addFinalizer(() => fd.close)
      const windows = new ReadWindows()
      const scannerFor = (k: number, offset: number, seq: number) =>
        Effect.gen(function* () {
          const s = log.segments[k]!
          const opened = yield* openSync(s.file)
          fd.set(opened)
          const size = k === lastK ? lastSize : yield* Effect.try({ try: () => fs.fstatSync(opened).size, catch: failure(`cannot read ${s.file}`) })
          // Up to the committed end: every append is whole, so payload checksums are left to the workers.
          return new AppendScanner(new SegmentReader(opened, size, READ_WINDOW, windows), offset, seq, READ_BATCH_BYTES, false)
        })
      let scanner = yield* scannerFor(k, start.offset, from)
      /** The next batch, started; none at the end of the log. */
      const startNext: Effect.Effect<Option.Option<RecordBatchInFlight>, StoreFailure> = Effect.gen(function* () {
        for (;;) {
          const batch = yield* scanner.next()
          if (batch) {
            windows.hold(batch.payloads)
            return Option.some(yield* startRecordBatch(batch.payloads, batch.firstSeq, { checksums: batch.checksums!, offsets: batch.offsets }))
          }
          const at = scanner.point
          const file = log.segments[k]!.file
          if (scanner.tail) return yield* corruptLog(at.seq, `segment ${file} ends inside an append (${scanner.tail.reason}) before the log's end`)
          if (k === lastK) {
            if (at.seq !== endSeq) return yield* corruptLog(at.seq, `the event log ends at seq ${at.seq - 1}, before its head, seq ${endSeq - 1}`)
            return Option.none()
          }
          k++
          const next = log.segments[k]!
          if (next.first !== at.seq) return yield* corruptLog(at.seq, `segment ${file} holds the events up to seq ${at.seq - 1}, but the next segment starts at seq ${next.first}`)
          scanner = yield* scannerFor(k, 0, at.seq)
        }
      })
      // Batches ahead, started before the current one is finished, so that the workers check them
      // while this thread links the current one. What went wrong ahead is reported only in turn.
      const ahead: Array<Either.Either<Option.Option<RecordBatchInFlight>, StoreFailure>> = []
      let ended = false
      const fill = Effect.gen(function* () {
        while (!ended && ahead.length < BATCHES_AHEAD) {
          const next = yield* Effect.either(startNext)
          ended = Either.isLeft(next) || Option.isNone(next.right)
          ahead.push(next)
        }
      })
      const pull: Effect.Effect<Chunk.Chunk<Envelope>, Option.Option<StoreFailure>> = Effect.gen(function* () {
        yield* fill
        const current = yield* ahead.shift()!
        if (Option.isNone(current)) return yield* Effect.fail(Option.none())
        yield* fill
        const envelopes = yield* finishRecordBatch(current.value, prev)
        windows.release(current.value.payloads)
        prev = headOf(envelopes[envelopes.length - 1]!)
        return Chunk.unsafeFromArray(envelopes)
      }).pipe(Effect.mapError((e) => (Option.isOption(e) ? e : Option.some(e))))
      return Stream.repeatEffectChunkOption(pull)
    })
  )

/** Where a follower of the files stands: the segment it reads, the byte and seq after what it has read, and the head. */
export type FollowPoint = { readonly first: number; readonly offset: number; readonly seq: number; readonly head: Head | undefined }

/** The segment starting at `first`, by its name now: a writer may adopt the previous layout's log.seg meanwhile. */
const segmentFile = (dir: string, first: number) => {
  const numbered = segmentPath(dir, first)
  return first === 0 && !fs.existsSync(numbered) ? legacySegmentPath(dir) : numbered
}

/**
 * The whole appends a writer (another process) has added since `at`, verified as they are read,
 * following it across segment rolls: a roll names the next segment after the last event of the
 * one before, so once that file exists the one before is complete. An incomplete last append is
 * left for a later call.
 */
export const readNewAppends = (dir: string, at: FollowPoint): Effect.Effect<readonly [Envelope[], FollowPoint], StoreFailure> =>
  Effect.gen(function* () {
    const out: Envelope[] = []
    let p = at
    for (;;) {
      const file = segmentFile(dir, p.first)
      // No log yet: a writer has not created its first segment.
      if (p.seq === 0 && !fs.existsSync(file)) return [out, p] as const
      const scanned = yield* Effect.acquireUseRelease(
        openSync(file),
        (fd) =>
          Effect.gen(function* () {
            const size = yield* Effect.try({ try: () => fs.fstatSync(fd).size, catch: failure(`cannot read ${file}`) })
            if (size < p.offset) return yield* new StoreFailure({ seq: p.seq, reason: `event log ${file} shrank below byte ${p.offset} while being read` })
            const scanner = new AppendScanner(new SegmentReader(fd, size), p.offset, p.seq)
            for (;;) {
              const batch = yield* scanner.next()
              if (!batch) return scanner.tail
              const envelopes = yield* decodeBatch(batch, p.head)
              out.push(...envelopes)
              p = { first: p.first, offset: batch.end, seq: batch.firstSeq + envelopes.length, head: headOf(envelopes[envelopes.length - 1]!) }
            }
          }),
        (fd) => Effect.sync(() => fs.closeSync(fd))
      )
      if (scanned !== undefined || p.seq === p.first || !fs.existsSync(segmentPath(dir, p.seq))) return [out, p] as const
      p = { first: p.seq, offset: 0, seq: p.seq, head: p.head }
    }
  })
