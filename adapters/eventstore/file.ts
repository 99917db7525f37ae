import * as fs from "node:fs"
import * as path from "node:path"
import { Cause, Chunk, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Queue, Stream, type Scope } from "effect"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import type { NewEvent } from "../../domain/ledger/events.ts"
import { StoreFailure, type InvalidEvent, type WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import { EventStore, type AppendResult, type EventStoreApi, type ExpectedRevision } from "../../domain/ports/event-store.ts"
import { makeLogIndex, nowIso } from "./log-index.ts"
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

const failure = (what: string) => (e: unknown) => new StoreFailure({ reason: `${what}: ${(e as Error).message ?? String(e)}` })

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
      readAll: (fromSeq = 0) => Effect.sync(() => index.readAll(fromSeq)),
      subscribe: (fromSeq = 0) => Stream.concat(Stream.fromIterable(index.readAll(fromSeq)), follow(fromSeq)),
      head: Effect.sync(() => index.head())
    }
    return api
  })

const openWriter = (dir: string, io: SegmentIo): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
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
    let size = scan.end.offset
    if (scan.tail) {
      yield* Effect.logWarning(
        `event log ${file}: cutting an incomplete last append (${scan.tail.bytes} bytes at byte ${scan.tail.offset}: ${scan.tail.reason})`
      )
      yield* Effect.tryPromise({
        try: async () => {
          await io.truncate(fh, size)
          await io.sync(fh)
        },
        catch: failure(`cannot truncate the torn tail of ${file}`)
      })
    }

    const index = yield* makeLogIndex(scan.envelopes)
    const queue = yield* Queue.unbounded<Request>()
    // Set once: after a failed write (fail-stop) or when the scope closes.
    let stopped: StoreFailure | undefined

    const commit = (batch: Iterable<Request>) =>
      Effect.gen(function* () {
        const at = yield* nowIso
        const accepted: Array<{ req: Request; envelopes: Envelope[]; revision: number }> = []
        for (const req of batch) {
          if (stopped) {
            yield* Deferred.fail(req.done, stopped)
            continue
          }
          const staged = index.stage(req.stream, req.events, req.expected, at)
          if (Either.isLeft(staged)) yield* Deferred.fail(req.done, staged.left)
          else accepted.push({ req, ...staged.right })
        }
        if (accepted.length === 0) return
        const bytes = Buffer.concat(accepted.flatMap((a) => encodeAppend(a.envelopes)))
        const written = yield* Effect.exit(
          Effect.tryPromise({
            try: async () => {
              await io.write(fh, bytes, size)
              await io.sync(fh)
            },
            catch: failure(`cannot write ${file}`)
          })
        )
        if (Exit.isFailure(written)) {
          index.dropStaged()
          const cause = Cause.squash(written.cause) as StoreFailure
          // Cut back what may have reached the file, so a reopen does not resurrect a batch whose
          // callers were told it failed. If even that fails, the reopen decides by what is there.
          yield* Effect.tryPromise(async () => {
            await io.truncate(fh, size)
            await io.sync(fh)
          }).pipe(Effect.ignore)
          stopped = new StoreFailure({ reason: `${cause.reason}; the store refuses further appends until it is reopened` })
          for (const a of accepted) yield* Deferred.fail(a.req.done, stopped)
          return
        }
        size += bytes.length
        yield* index.publishStaged
        for (const a of accepted) {
          const last = a.envelopes[a.envelopes.length - 1]!
          yield* Deferred.succeed(a.req.done, { revision: a.revision, head: { seq: last.seq, hash: last.hash }, envelopes: a.envelopes })
        }
      }).pipe(Effect.uninterruptible) // a batch runs to the end: no half-acknowledged writes

    const writer = Queue.takeBetween(queue, 1, MAX_BATCH).pipe(Effect.flatMap(commit), Effect.forever)
    // Forked inside acquire (uninterruptible), so interruptibility is restored explicitly.
    yield* Effect.acquireRelease(Effect.forkDaemon(Effect.interruptible(writer)), (fiber) =>
      Effect.gen(function* () {
        stopped ??= new StoreFailure({ reason: `the event store on ${dir} is closed` })
        yield* Fiber.interrupt(fiber)
        const left = yield* Queue.takeAll(queue)
        for (const req of left) yield* Deferred.fail(req.done, stopped)
        yield* Queue.shutdown(queue)
      })
    )

    const api: EventStoreApi = {
      append: (stream, events, expected) =>
        Effect.suspend(() => {
          if (stopped) return Effect.fail(stopped)
          return Effect.flatMap(Deferred.make<AppendResult, AppendError>(), (done) =>
            Effect.zipRight(Queue.offer(queue, { stream, events, expected, done }), Deferred.await(done))
          )
        }),
      read: (stream) => Effect.sync(() => index.read(stream)),
      readAll: (fromSeq = 0) => Effect.sync(() => index.readAll(fromSeq)),
      subscribe: (fromSeq = 0) => index.subscribe(fromSeq),
      head: Effect.sync(() => index.head())
    }
    return api
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

