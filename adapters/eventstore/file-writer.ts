import * as fs from "node:fs"
import { Cause, Deferred, Effect, Either, Exit, Fiber, PubSub, Queue, Stream, type Scope } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { NewEvent } from "../../domain/ledger/events.ts"
import { StoreFailure, type InvalidEvent, type WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import type { AppendResult, EventStoreApi, ExpectedRevision } from "../../domain/ports/event-store.ts"
import { storeFailure as failure } from "../failure.ts"
import { encodeAppend } from "./file-format.ts"
import { encodeEntries, encodeIndexHeader, encodeSummary, entryPosition, type IndexEntry } from "./file-index.ts"
import { createSegment, writeAllSync, type Segment } from "./file-layout.ts"
import { readRange, readStream, type LogFiles } from "./file-reading.ts"
import { recoverLog } from "./file-recovery.ts"
import type { StreamTable } from "./file-streams.ts"
import { nowIso } from "./log-index.ts"
import { sealAppend } from "./seal-append.ts"

/** The writer's file operations on segments. */
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

const MAX_BATCH = 4096
/** A subscriber further behind than this reads the log up to the head before it starts taking live events. */
const CATCH_UP = 4096

type AppendError = WrongExpectedRevision | InvalidEvent | StoreFailure
type Request = {
  readonly stream: string
  readonly events: ReadonlyArray<NewEvent>
  readonly expected: ExpectedRevision
  readonly done: Deferred.Deferred<AppendResult, AppendError>
}

/** The segment being written: its data through the injectable io, its index with plain writes. */
type Active = { readonly segment: Segment; readonly fh: fs.promises.FileHandle; readonly indexFd: number }

/**
 * The writer's state, shared by the batch writer and the api. The committed state (`size`,
 * `streams`, `touched`, `head`, the index entries) changes in one turn, once appends are durable;
 * `stopped` is set once: after a failed write (fail-stop) or when the scope closes.
 */
type Writer = {
  readonly dir: string
  readonly io: SegmentIo
  readonly segmentBytes: number
  readonly segments: Segment[]
  readonly files: LogFiles
  active: Active
  /** The committed size of the active segment. */
  size: number
  readonly streams: StreamTable
  /** The streams with events in the active segment, for its summary. */
  readonly touched: Set<string>
  head: Head | undefined
  readonly hub: PubSub.PubSub<Envelope>
  readonly queue: Queue.Queue<Request>
  stopped: StoreFailure | undefined
}

/** An append that passed its checks, sealed and framed, waiting for its write. */
type Accepted = { readonly req: Request; readonly envelopes: Envelope[]; readonly revision: number; readonly records: Buffer[]; readonly bytes: number }

const openActive = (segment: Segment): Effect.Effect<Active, StoreFailure> =>
  Effect.gen(function* () {
    const fh = yield* Effect.tryPromise({ try: () => fs.promises.open(segment.file, fs.constants.O_RDWR), catch: failure(`cannot open ${segment.file}`) })
    const indexFd = yield* Effect.try({
      try: () => fs.openSync(segment.index, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644),
      catch: failure(`cannot open ${segment.index}`)
    }).pipe(Effect.tapError(() => Effect.promise(() => fh.close().catch(() => undefined))))
    return { segment, fh, indexFd }
  })

const closeActive = (a: Active) =>
  Effect.zipRight(
    Effect.promise(() => a.fh.close().catch(() => undefined)),
    Effect.sync(() => {
      try {
        fs.closeSync(a.indexFd)
      } catch {
        // Already closed.
      }
    })
  )

/**
 * Open the writer on `segments` (with the writer lock held): recover the log, cut an incomplete
 * last append, and start the group-commit writer.
 */
export const openWriter = (
  dir: string,
  segments: Segment[],
  segmentBytes: number,
  overrides: Partial<SegmentIo> = {}
): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const io = { ...nodeIo, ...overrides }
    const log = yield* recoverLog(segments, true)
    const last = segments[segments.length - 1]!
    const active = yield* openActive(last)
    if (log.tail) {
      yield* Effect.logWarning(
        `event log ${last.file}: cutting an incomplete last append (${log.tail.bytes} bytes at byte ${log.tail.offset}: ${log.tail.reason})`
      )
      yield* Effect.tryPromise({ try: () => truncateAndSync(io, active.fh, log.end.offset), catch: failure(`cannot truncate the torn tail of ${last.file}`) }).pipe(
        Effect.tapError(() => closeActive(active))
      )
    }
    const repairs = yield* Effect.makeSemaphore(1)
    const w: Writer = {
      dir,
      io,
      segmentBytes,
      segments,
      files: { dir, segments, lastSize: () => w.size, memory: log.memory, writable: true, repairs },
      active,
      size: log.end.offset,
      streams: log.streams,
      touched: log.touched,
      head: log.head,
      hub: yield* PubSub.unbounded<Envelope>(),
      queue: yield* Queue.unbounded<Request>(),
      stopped: undefined
    }
    // Whatever segment is active when the scope closes is closed with it.
    yield* Effect.addFinalizer(() => closeActive(w.active))
    yield* runBatchWriter(w)
    return writerApi(w)
  })

const truncateAndSync = async (io: SegmentIo, fh: fs.promises.FileHandle, size: number) => {
  await io.truncate(fh, size)
  await io.sync(fh)
}

/**
 * Fork the group-commit writer for the scope: it takes every waiting append, up to MAX_BATCH, and
 * commits them together. Closing the scope stops it and fails whatever is still queued.
 */
const runBatchWriter = (w: Writer): Effect.Effect<void, never, Scope.Scope> => {
  const loop = Queue.takeBetween(w.queue, 1, MAX_BATCH).pipe(Effect.flatMap((batch) => commitBatch(w, batch)), Effect.forever)
  // Forked inside acquire (uninterruptible), so interruptibility is restored explicitly.
  return Effect.asVoid(
    Effect.acquireRelease(Effect.forkDaemon(Effect.interruptible(loop)), (fiber) =>
      Effect.gen(function* () {
        const stopped = (w.stopped ??= new StoreFailure({ reason: `the event store on ${w.dir} is closed` }))
        yield* Fiber.interrupt(fiber)
        const left = yield* Queue.takeAll(w.queue)
        for (const req of left) yield* Deferred.fail(req.done, stopped)
        yield* Queue.shutdown(w.queue)
      })
    )
  )
}

/**
 * Decide each append of a batch against the committed state and the appends before it in the
 * batch; those refused (or arriving after a stop) are failed here.
 */
const stageBatch = (w: Writer, batch: Iterable<Request>): Effect.Effect<Array<Accepted>> =>
  Effect.gen(function* () {
    const at = yield* nowIso
    const accepted: Array<Accepted> = []
    const revisions = new Map<string, number>()
    let head = w.head
    for (const req of batch) {
      if (w.stopped) {
        yield* Deferred.fail(req.done, w.stopped)
        continue
      }
      const sealed = sealAppend(req.stream, req.events, req.expected, revisions.get(req.stream) ?? w.streams.revision(req.stream), head, at)
      if (Either.isLeft(sealed)) {
        yield* Deferred.fail(req.done, sealed.left)
        continue
      }
      const { envelopes, revision } = sealed.right
      const records = encodeAppend(envelopes)
      revisions.set(req.stream, revision)
      const last = envelopes[envelopes.length - 1]!
      head = { seq: last.seq, hash: last.hash }
      accepted.push({ req, envelopes, revision, records, bytes: records.reduce((n, r) => n + r.length, 0) })
    }
    return accepted
  })

/**
 * Commit a batch: write it into the active segment with one write and one fdatasync, rolling to a
 * new segment first when the active one has reached `segmentBytes` (so a batch may land in parts,
 * one per segment, each committed and acknowledged in turn; an append never spans two segments).
 * Only once a part is durable is it indexed, made visible and acknowledged. Runs to the end: no
 * half-acknowledged writes.
 */
const commitBatch = (w: Writer, batch: Iterable<Request>): Effect.Effect<void> =>
  Effect.gen(function* () {
    const accepted = yield* stageBatch(w, batch)
    for (let i = 0; i < accepted.length; ) {
      if (w.size > 0 && w.size >= w.segmentBytes) {
        const rolled = yield* Effect.exit(roll(w))
        if (Exit.isFailure(rolled)) return yield* failStop(w, accepted.slice(i), Cause.squash(rolled.cause) as StoreFailure)
      }
      // The appends that start before the segment's limit (at least one).
      let j = i
      let bytes = 0
      while (j < accepted.length && (j === i || w.size + bytes < w.segmentBytes)) bytes += accepted[j++]!.bytes
      const part = accepted.slice(i, j)
      const data = Buffer.concat(part.flatMap((a) => a.records), bytes)
      const written = yield* Effect.exit(
        Effect.tryPromise({
          try: async () => {
            await w.io.write(w.active.fh, data, w.size)
            await w.io.sync(w.active.fh)
          },
          catch: failure(`cannot write ${w.active.segment.file}`)
        })
      )
      if (Exit.isFailure(written)) return yield* failStop(w, accepted.slice(i), Cause.squash(written.cause) as StoreFailure)
      const indexFailure = commitPart(w, part)
      yield* PubSub.publishAll(
        w.hub,
        part.flatMap((a) => a.envelopes)
      )
      for (const a of part) {
        const last = a.envelopes[a.envelopes.length - 1]!
        yield* Deferred.succeed(a.req.done, { revision: a.revision, head: { seq: last.seq, hash: last.hash }, envelopes: a.envelopes })
      }
      if (indexFailure) return yield* stop(w, accepted.slice(j), indexFailure)
      i = j
    }
  }).pipe(Effect.uninterruptible)

/**
 * A durable part becomes the committed state, and its index entries are written, in one turn: no
 * reader sees the one without the other. The entries are not synced (open checks them). Returns
 * why the index could not be written, if it could not: the part is durable regardless.
 */
const commitPart = (w: Writer, part: ReadonlyArray<Accepted>): StoreFailure | undefined => {
  const firstSeq = part[0]!.envelopes[0]!.seq
  const entries: IndexEntry[] = []
  let offset = w.size
  for (const a of part)
    a.envelopes.forEach((e, i) => {
      entries.push(w.streams.advance(e.stream, e.seq, offset))
      w.touched.add(e.stream)
      offset += a.records[i]!.length
    })
  w.size = offset
  const last = part[part.length - 1]!.envelopes
  w.head = { seq: last[last.length - 1]!.seq, hash: last[last.length - 1]!.hash }
  const { segment, indexFd } = w.active
  try {
    writeAllSync(indexFd, encodeEntries(firstSeq, entries), entryPosition(segment.first, firstSeq))
    return undefined
  } catch (e) {
    return failure(`cannot write ${segment.index}`)(e)
  }
}

/**
 * Seal the active segment and start the next: the summary goes into the index, which is synced
 * (the sealed segment never changes again), then the next segment is created, named after the
 * next seq, and its directory entry synced, before anything is written to it.
 */
const roll = (w: Writer): Effect.Effect<void, StoreFailure> =>
  Effect.gen(function* () {
    const sealed = w.active
    const head = w.head!
    const end = head.seq + 1
    const next = yield* Effect.try({
      try: () => {
        const summary = encodeSummary({ end, last: head.hash, streams: w.streams.summarize(w.touched) })
        writeAllSync(sealed.indexFd, summary, entryPosition(sealed.segment.first, end))
        fs.fdatasyncSync(sealed.indexFd)
        return createSegment(w.dir, end, encodeIndexHeader(end))
      },
      catch: failure(`cannot start a new segment after ${sealed.segment.file}`)
    })
    const active = yield* openActive(next)
    w.active = active
    w.segments.push(next)
    w.size = 0
    w.touched.clear()
    yield* closeActive(sealed)
  })

/** Refuse every later append, failing `rest` (not written) with the reason. */
const stop = (w: Writer, rest: ReadonlyArray<Accepted>, cause: StoreFailure): Effect.Effect<void> =>
  Effect.gen(function* () {
    const stopped = (w.stopped = new StoreFailure({ reason: `${cause.reason}; the store refuses further appends until it is reopened` }))
    for (const a of rest) yield* Deferred.fail(a.req.done, stopped)
  })

/** A write, sync or roll failed: drop what is not committed, cut the file back, and stop. */
const failStop = (w: Writer, rest: ReadonlyArray<Accepted>, cause: StoreFailure): Effect.Effect<void> =>
  Effect.gen(function* () {
    // Cut back what may have reached the file, so a reopen does not resurrect a batch whose
    // callers were told it failed. If even that fails, the reopen decides by what is there.
    yield* Effect.tryPromise(() => truncateAndSync(w.io, w.active.fh, w.size)).pipe(Effect.ignore)
    yield* stop(w, rest, cause)
  })

const nextSeq = (w: Writer) => (w.head?.seq ?? -1) + 1

/**
 * Catch-up from disk, then live from the writer's hub, with no gap and no duplicate: the hub is
 * joined before the last catch-up read is bounded, and live events up to that bound are dropped.
 * A subscriber far behind reads up to the head before joining, so live events do not pile up
 * in memory while it catches up.
 */
const subscribe = (w: Writer, fromSeq: number): Stream.Stream<Envelope, StoreFailure> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const head = nextSeq(w)
      if (head - fromSeq > CATCH_UP) return Stream.concat(readRange(w.files, fromSeq, () => head), Stream.suspend(() => subscribe(w, head)))
      const live = yield* PubSub.subscribe(w.hub)
      const upTo = nextSeq(w)
      const from = Math.max(upTo, fromSeq)
      return Stream.concat(
        readRange(w.files, fromSeq, () => upTo),
        Stream.fromQueue(live).pipe(Stream.filter((e) => e.seq >= from))
      )
    })
  )

const writerApi = (w: Writer): EventStoreApi => ({
  append: (stream, events, expected) =>
    Effect.suspend(() => {
      if (w.stopped) return Effect.fail(w.stopped)
      return Effect.flatMap(Deferred.make<AppendResult, AppendError>(), (done) =>
        Effect.zipRight(Queue.offer(w.queue, { stream, events, expected, done }), Deferred.await(done))
      )
    }),
  read: (stream) => Effect.suspend(() => readStream(w.files, stream, w.streams.get(stream))),
  readAll: (fromSeq = 0) => readRange(w.files, fromSeq, () => nextSeq(w)),
  subscribe: (fromSeq = 0) => subscribe(w, fromSeq),
  head: Effect.sync(() => w.head)
})
