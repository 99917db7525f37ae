import * as fs from "node:fs"
import * as path from "node:path"
import { Chunk, Effect, Layer, Option, Stream, type Scope } from "effect"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { EventStore, type EventStoreApi, type ReplicaApi } from "../../domain/ports/event-store.ts"
import { storeFailure as failure } from "../failure.ts"
import { inspectSegment, SegmentReader, type RawRecord, type SegmentInspection } from "./file-format.ts"
import { eventsDir, listSegments, prepareSegments } from "./file-layout.ts"
import { acquireWriterLock } from "./file-lock.ts"
import { readNewAppends, readRange, readStream, type FollowPoint, type LogFiles } from "./file-reading.ts"
import { recoverLog } from "./file-recovery.ts"
import { openWriter, type SegmentIo } from "./file-writer.ts"

export { eventsDir, segmentPath } from "./file-layout.ts"
export type { SegmentIo } from "./file-writer.ts"

/**
 * The embedded, durable event store: the log in segment files under `<dir>/events/`
 * (`file-layout.ts`), each with an index (`file-index.ts`); records framed as in `file-format.ts`.
 *
 * - Memory holds each stream's revision and last seq and the head, whatever the length of the
 *   log; events are read from disk: `readAll` streams the segments in batches, `read` follows a
 *   stream's back-pointers through the indexes.
 * - Open checks the indexes against the segments cheaply, rebuilds those that disagree (the log is
 *   the truth), and reads only what lies beyond the last index (`file-recovery.ts`). An incomplete
 *   last append (a crash mid-write) is cut off by a writer and ignored by a reader. Every record is
 *   verified (framing, schema, link, own hash, genesis) as `readAll` reads it, which fails naming
 *   the seq of the first bad one: `readAll(0)` is the whole-log check that audit runs.
 * - Appends are group-committed, rolled over to a new segment once one reaches `segmentBytes`,
 *   and fail-stop (`file-writer.ts`).
 * - One writer per data directory (`events/LOCK`, see `file-lock.ts`). A read-only open takes no
 *   lock: `read`, `readAll` and `head` answer from the log as it was at open, and `subscribe`
 *   follows the files by polling for new whole appends every 200 ms, across segment rolls.
 */
export type FileEventStoreOptions = {
  readonly readOnly?: boolean
  /** A writer starts a new segment before an append that would begin at or past this size. */
  readonly segmentBytes?: number
  /** @internal Fault injection for tests: replaces the file operations the writer uses on segments. */
  readonly io?: Partial<SegmentIo>
}

export const DEFAULT_SEGMENT_BYTES = 256 << 20

const POLL = "200 millis"

export const makeFileEventStore = (dir: string, options: FileEventStoreOptions = {}): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  options.readOnly ? Effect.zipRight(segmentSize(options), openReader(dir)) : makeFileReplica(dir, options)

/** The writable store, which can also hold a copy of another store's log (a node's replica). */
export const makeFileReplica = (dir: string, options: Omit<FileEventStoreOptions, "readOnly"> = {}): Effect.Effect<EventStoreApi & ReplicaApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const segmentBytes = yield* segmentSize(options)
    const evDir = eventsDir(dir)
    yield* Effect.try({ try: () => fs.mkdirSync(evDir, { recursive: true }), catch: failure(`cannot create ${evDir}`) })
    yield* acquireWriterLock(dir, evDir)
    return yield* openWriter(dir, yield* prepareSegments(dir), segmentBytes, options.io)
  })

const segmentSize = (options: FileEventStoreOptions): Effect.Effect<number, StoreFailure> => {
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
  return Number.isSafeInteger(segmentBytes) && segmentBytes >= 1
    ? Effect.succeed(segmentBytes)
    : Effect.fail(new StoreFailure({ reason: `the segment size must be a positive whole number of bytes, not ${segmentBytes}` }))
}

const openReader = (dir: string): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const segments = yield* listSegments(dir)
    const log = yield* recoverLog(segments, false)
    const files: LogFiles = {
      dir,
      segments,
      lastSize: () => log.end.offset,
      memory: log.memory,
      writable: false,
      repairs: yield* Effect.makeSemaphore(1)
    }
    const end = () => log.end.seq
    const snapshotEnd: FollowPoint = { first: segments[segments.length - 1]?.first ?? 0, offset: log.end.offset, seq: log.end.seq, head: log.head }

    // Each subscriber follows the files from where the snapshot ended, verifying as it goes.
    const follow = (fromSeq: number): Stream.Stream<Envelope, StoreFailure> =>
      Stream.paginateChunkEffect(snapshotEnd, (point) =>
        readNewAppends(dir, point).pipe(
          Effect.delay(POLL),
          Effect.map(([envelopes, next]) => [Chunk.unsafeFromArray(envelopes.filter((e) => e.seq >= fromSeq)), Option.some(next)] as const)
        )
      )

    const readOnly = new StoreFailure({ reason: `data directory ${dir} is opened read-only` })
    const api: EventStoreApi = {
      append: () => Effect.fail(readOnly),
      read: (stream) => readStream(files, stream, log.streams.get(stream)),
      readAll: (fromSeq = 0) => readRange(files, fromSeq, end),
      subscribe: (fromSeq = 0) => Stream.concat(readRange(files, fromSeq, end), follow(fromSeq)),
      head: Effect.succeed(log.head)
    }
    return api
  })

export const FileEventStoreLive = (dir: string, options: FileEventStoreOptions = {}) => Layer.scoped(EventStore, makeFileEventStore(dir, options))

/**
 * The raw records of every segment in `<dir>/events`, in order, checked only for framing, for
 * audit tools that want to show what is stored even where the store would refuse it. A missing
 * directory has none.
 */
export const inspectLogFile = (dir: string): Effect.Effect<SegmentInspection, StoreFailure> =>
  Effect.gen(function* () {
    const segments = yield* listSegments(dir)
    return yield* Effect.try({
      try: (): SegmentInspection => {
        const records: RawRecord[] = []
        let size = 0
        let stop: SegmentInspection["stop"]
        for (const s of segments) {
          const name = path.basename(s.file)
          const fd = fs.openSync(s.file, "r")
          try {
            const src = new SegmentReader(fd, fs.fstatSync(fd).size)
            size += src.size
            if (stop) continue
            const seq = records.length
            if (s.first !== seq) stop = { kind: "corrupt", seq, segment: name, offset: 0, reason: `segment ${name} starts at seq ${s.first}, after seq ${seq - 1}` }
            else {
              const seen = inspectSegment(src, name, seq)
              records.push(...seen.records)
              stop = seen.stop
            }
          } finally {
            fs.closeSync(fd)
          }
        }
        return { size, records, stop }
      },
      catch: failure(`cannot read the event log in ${dir}`)
    })
  })
