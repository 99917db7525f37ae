import * as fs from "node:fs"
import * as path from "node:path"
import { Cause, Chunk, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Queue, Stream, type Scope } from "effect"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import type { NewEvent } from "../../domain/ledger/events.ts"
import { StoreFailure, type InvalidEvent, type WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import { EventStore, type AppendResult, type EventStoreApi, type ExpectedRevision } from "../../domain/ports/event-store.ts"
import { storeFailure as failure } from "../failure.ts"
import { makeLogIndex, nowIso, type LogIndex } from "./log-index.ts"
import { acquireWriterLock } from "./file-lock.ts"
import {
  encodeAppend,
  inspectSegment,
  scanSegment,
  scanStart,
  SegmentReader,
  type ScanPoint,
  type ScanResult,
  type SegmentInspection
} from "./file-format.ts"

/**
 * The embedded, durable event store: one append-only segment, `<dir>/events/log.seg`, whose
 * format is described in `file-format.ts`. A single segment keeps recovery and the single-writer
 * rule simple; the whole log is held in memory by the index anyway.
 *
 * - Open scans every record and verifies framing, schema and the hash chain. An incomplete last
 *   append (a crash mid-write) is cut off by a writer and ignored by a reader; anything else wrong
 *   refuses the open with a StoreFailure naming the seq of the bad record.
 * - Appends are group-committed: one writer fiber stages every waiting append, writes them with
 *   one write and one fdatasync, and only then makes them visible and acknowledges them. If the
 *   write or sync fails, the batch is dropped, the file cut back, and the store refuses further
 *   appends (fail-stop) so that memory and disk cannot diverge into a fork.
 * - One writer per data directory (`events/LOCK`, see `file-lock.ts`). A read-only open takes no
 *   lock: `read`, `readAll` and `head` answer from the log as it was at open, and `subscribe`
 *   follows the file by polling for new whole appends every 200 ms.
 */
export type FileEventStoreOptions = {
  readonly readOnly?: boolean
  /** @internal Fault injection for tests: replaces the file operations the writer uses. */
  readonly io?: Partial<SegmentIo>
}

/** The writer's file operations, all on the open segment. */
export type SegmentIo = {
  readonly write: (fh: fs.promises.FileHandle, bytes: Buffer, position: number) => Promise<void>
  readonly sync: (fh: fs.promises.FileHandle) => Promise<void>
  readonly truncate: (fh: fs.promises.FileHandle, size: number) => Promise<void>
}

const nodeIo: SegmentIo = {
  write: async (fh, bytes, position) => {
    for (let done = 0; done < bytes.length; ) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done)
      done += bytesWritten
    }
  },
  // fdatasync: the data and the file length; the rest of the metadata is not needed to read it back.
  sync: (fh) => fh.datasync(),
  truncate: (fh, size) => fh.truncate(size)
}

export const eventsDir = (dir: string) => path.join(dir, "events")
export const segmentPath = (dir: string) => path.join(eventsDir(dir), "log.seg")

const POLL = "200 millis"
const MAX_BATCH = 4096

/** Scan the segment from `from`, if it exists; a missing file is an empty log. */
const scanFile = (file: string, from: ScanPoint): Either.Either<ScanResult & { size: number }, StoreFailure> => {
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return Either.right({ envelopes: [], end: from, tail: undefined, size: 0 })
    return Either.left(failure(`cannot open ${file}`)(e))
  }
  try {
    const size = fs.fstatSync(fd).size
    if (size < from.offset)
      return Either.left(new StoreFailure({ seq: from.seq, reason: `event log ${file} shrank below byte ${from.offset} while being read` }))
    return Either.map(scanSegment(new SegmentReader(fd, size), from), (r) => ({ ...r, size }))
  } catch (e) {
    return Either.left(failure(`cannot read ${file}`)(e))
  } finally {
    fs.closeSync(fd)
  }
}

const fsyncDir = (dir: string) => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

type AppendError = WrongExpectedRevision | InvalidEvent | StoreFailure
type Request = {
  readonly stream: string
  readonly events: ReadonlyArray<NewEvent>
  readonly expected: ExpectedRevision
  readonly done: Deferred.Deferred<AppendResult, AppendError>
}

export const makeFileEventStore = (
  dir: string,
  options: FileEventStoreOptions = {}
): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  options.readOnly ? openReader(dir) : openWriter(dir, { ...nodeIo, ...options.io })

const openReader = (dir: string): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const file = segmentPath(dir)
    const scan = yield* Effect.suspend(() => scanFile(file, scanStart))
    const index = yield* makeLogIndex(scan.envelopes)
    const snapshotEnd = scan.end

    // Each subscriber follows the file from where the snapshot ended, verifying as it goes.
    const follow = (fromSeq: number): Stream.Stream<Envelope, StoreFailure> =>
      Stream.paginateChunkEffect(snapshotEnd, (point) =>
        Effect.suspend(() => scanFile(file, point)).pipe(
          Effect.delay(POLL),
          Effect.map((r) => [Chunk.unsafeFromArray(r.envelopes.filter((e) => e.seq >= fromSeq)), Option.some(r.end)] as const)
        )
      )

    const readOnly = new StoreFailure({ reason: `data directory ${dir} is opened read-only` })
    const api: EventStoreApi = {
      append: () => Effect.fail(readOnly),
      read: (stream) => Effect.sync(() => index.read(stream)),
      readAll: (fromSeq = 0) => Stream.suspend(() => Stream.fromIterable(index.readAll(fromSeq))),
      subscribe: (fromSeq = 0) => Stream.concat(Stream.fromIterable(index.readAll(fromSeq)), follow(fromSeq)),
      head: Effect.sync(() => index.head())
    }
    return api
  })

/**
 * The writer's state, shared by the batch writer and the api. `size` is the length of the segment
 * that holds committed appends; `stopped` is set once: after a failed write (fail-stop) or when the
 * scope closes.
 */
type Writer = {
  readonly file: string
  readonly fh: fs.promises.FileHandle
  readonly io: SegmentIo
  readonly index: LogIndex
  readonly queue: Queue.Queue<Request>
  size: number
  stopped: StoreFailure | undefined
}

type Accepted = { readonly req: Request; readonly envelopes: Envelope[]; readonly revision: number }

const openWriter = (dir: string, io: SegmentIo): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const { file, fh, scan } = yield* openSegment(dir, io)
    const writer: Writer = {
      file,
      fh,
      io,
      index: yield* makeLogIndex(scan.envelopes),
      queue: yield* Queue.unbounded<Request>(),
      size: scan.end.offset,
      stopped: undefined
    }
    yield* runBatchWriter(writer, dir)
    return writerApi(writer)
  })

/**
 * Take the writer lock, open (or create) the segment, scan and verify it, and cut off an
 * incomplete last append, so that the file ends where the scan ended.
 */
const openSegment = (dir: string, io: SegmentIo) =>
  Effect.gen(function* () {
    const evDir = eventsDir(dir)
    const file = segmentPath(dir)
    yield* Effect.try({ try: () => fs.mkdirSync(evDir, { recursive: true }), catch: failure(`cannot create ${evDir}`) })
    yield* acquireWriterLock(dir, evDir)

    const created = !fs.existsSync(file)
    const fh = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => fs.promises.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644), catch: failure(`cannot open ${file}`) }),
      (h) => Effect.promise(() => h.close().catch(() => undefined))
    )
    // A new file's directory entry must be durable too, or a crash could lose the whole log.
    if (created) yield* Effect.try({ try: () => fsyncDir(evDir), catch: failure(`cannot sync ${evDir}`) })

    const scan = yield* Effect.suspend(() => scanFile(file, scanStart))
    if (scan.tail) {
      yield* Effect.logWarning(
        `event log ${file}: cutting an incomplete last append (${scan.tail.bytes} bytes at byte ${scan.tail.offset}: ${scan.tail.reason})`
      )
      yield* Effect.tryPromise({
        try: () => truncateAndSync(io, fh, scan.end.offset),
        catch: failure(`cannot truncate the torn tail of ${file}`)
      })
    }
    return { file, fh, scan }
  })

const truncateAndSync = async (io: SegmentIo, fh: fs.promises.FileHandle, size: number) => {
  await io.truncate(fh, size)
  await io.sync(fh)
}

/**
 * Fork the group-commit writer for the scope: it takes every waiting append, up to MAX_BATCH, and
 * commits them together. Closing the scope stops it and fails whatever is still queued.
 */
const runBatchWriter = (w: Writer, dir: string): Effect.Effect<void, never, Scope.Scope> => {
  const loop = Queue.takeBetween(w.queue, 1, MAX_BATCH).pipe(Effect.flatMap((batch) => commitBatch(w, batch)), Effect.forever)
  // Forked inside acquire (uninterruptible), so interruptibility is restored explicitly.
  return Effect.asVoid(
    Effect.acquireRelease(Effect.forkDaemon(Effect.interruptible(loop)), (fiber) =>
      Effect.gen(function* () {
        const stopped = (w.stopped ??= new StoreFailure({ reason: `the event store on ${dir} is closed` }))
        yield* Fiber.interrupt(fiber)
        const left = yield* Queue.takeAll(w.queue)
        for (const req of left) yield* Deferred.fail(req.done, stopped)
        yield* Queue.shutdown(w.queue)
      })
    )
  )
}

/**
 * Stage a batch in the index, write and sync it with one write, and only then make it visible and
 * acknowledge it. A batch runs to the end: no half-acknowledged writes.
 */
const commitBatch = (w: Writer, batch: Iterable<Request>): Effect.Effect<void> =>
  Effect.gen(function* () {
    const accepted = yield* stageBatch(w, batch)
    if (accepted.length === 0) return
    const bytes = Buffer.concat(accepted.flatMap((a) => encodeAppend(a.envelopes)))
    const written = yield* Effect.exit(
      Effect.tryPromise({
        try: async () => {
          await w.io.write(w.fh, bytes, w.size)
          await w.io.sync(w.fh)
        },
        catch: failure(`cannot write ${w.file}`)
      })
    )
    if (Exit.isFailure(written)) return yield* failStop(w, accepted, Cause.squash(written.cause) as StoreFailure)
    w.size += bytes.length
    yield* w.index.publishStaged
    for (const a of accepted) {
      const last = a.envelopes[a.envelopes.length - 1]!
      yield* Deferred.succeed(a.req.done, { revision: a.revision, head: { seq: last.seq, hash: last.hash }, envelopes: a.envelopes })
    }
  }).pipe(Effect.uninterruptible)

/** Stage each request of a batch in the index; those refused (or arriving after a stop) are failed here. */
const stageBatch = (w: Writer, batch: Iterable<Request>): Effect.Effect<Array<Accepted>> =>
  Effect.gen(function* () {
    const at = yield* nowIso
    const accepted: Array<Accepted> = []
    for (const req of batch) {
      if (w.stopped) {
        yield* Deferred.fail(req.done, w.stopped)
        continue
      }
      const staged = w.index.stage(req.stream, req.events, req.expected, at)
      if (Either.isLeft(staged)) yield* Deferred.fail(req.done, staged.left)
      else accepted.push({ req, ...staged.right })
    }
    return accepted
  })

/** A batch's write or sync failed: drop it, cut the file back, and refuse every later append. */
const failStop = (w: Writer, accepted: ReadonlyArray<Accepted>, cause: StoreFailure): Effect.Effect<void> =>
  Effect.gen(function* () {
    w.index.dropStaged()
    // Cut back what may have reached the file, so a reopen does not resurrect a batch whose
    // callers were told it failed. If even that fails, the reopen decides by what is there.
    yield* Effect.tryPromise(() => truncateAndSync(w.io, w.fh, w.size)).pipe(Effect.ignore)
    const stopped = (w.stopped = new StoreFailure({ reason: `${cause.reason}; the store refuses further appends until it is reopened` }))
    for (const a of accepted) yield* Deferred.fail(a.req.done, stopped)
  })

const writerApi = (w: Writer): EventStoreApi => ({
  append: (stream, events, expected) =>
    Effect.suspend(() => {
      if (w.stopped) return Effect.fail(w.stopped)
      return Effect.flatMap(Deferred.make<AppendResult, AppendError>(), (done) =>
        Effect.zipRight(Queue.offer(w.queue, { stream, events, expected, done }), Deferred.await(done))
      )
    }),
  read: (stream) => Effect.sync(() => w.index.read(stream)),
  readAll: (fromSeq = 0) => Stream.suspend(() => Stream.fromIterable(w.index.readAll(fromSeq))),
  subscribe: (fromSeq = 0) => w.index.subscribe(fromSeq),
  head: Effect.sync(() => w.index.head())
})

export const FileEventStoreLive = (dir: string, options: FileEventStoreOptions = {}) =>
  Layer.scoped(EventStore, makeFileEventStore(dir, options))

/**
 * The raw records of `<dir>/events/log.seg`, checked only for framing, for audit tools that want
 * to show what is stored even where the store would refuse to open. A missing file has none.
 */
export const inspectLogFile = (dir: string): Effect.Effect<SegmentInspection, StoreFailure> =>
  Effect.try({
    try: () => {
      const file = segmentPath(dir)
      if (!fs.existsSync(file)) return { size: 0, records: [], stop: undefined }
      const fd = fs.openSync(file, "r")
      try {
        return inspectSegment(new SegmentReader(fd, fs.fstatSync(fd).size))
      } finally {
        fs.closeSync(fd)
      }
    },
    catch: failure(`cannot read the event log in ${dir}`)
  })

