import * as fs from "node:fs"
import { Cause, Effect, Either, Exit, Fiber, PubSub, Stream, type Scope } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { NewEvent } from "../../domain/ledger/events.ts"
import { StoreFailure, type InvalidEvent, type WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import type { AppendResult, EventStoreApi, ExpectedRevision, ReplicaApi } from "../../domain/ports/event-store.ts"
import { storeFailure as failure } from "../failure.ts"
import { framedBytes, recordText, writeAppend } from "./file-format.ts"
import { encodeEntries, encodeIndexHeader, encodeSummary, entryPosition, type IndexEntry } from "./file-index.ts"
import { createSegment, writeAllSync, type Segment } from "./file-layout.ts"
import { readRange, readStream, type LogFiles } from "./file-reading.ts"
import { recoverLog } from "./file-recovery.ts"
import type { StreamTable } from "./file-streams.ts"
import { nowIso } from "./log-index.ts"
import { replicaAppend, sealAppend } from "./seal-append.ts"

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
/** An append to seal here (`events`), or envelopes sealed by another store to take verbatim (`replica`). */
type Request = {
  readonly stream: string
  readonly what: { readonly events: ReadonlyArray<NewEvent>; readonly expected: ExpectedRevision } | { readonly replica: ReadonlyArray<Envelope> }
  /** Resumes the appending fiber with the append's outcome; called once. */
  readonly done: (outcome: Effect.Effect<AppendResult, AppendError>) => void
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
  /** How far writes to the active segment have gone: `size` plus what is written but not yet durable. */
  written: number
  readonly streams: StreamTable
  /** The streams with events in the active segment, for its summary. */
  readonly touched: Set<string>
  head: Head | undefined
  readonly hub: PubSub.PubSub<Envelope>
  /**
   * The appends waiting for the writer, and the writer itself while it waits for one. A plain
   * array and callbacks rather than a Queue and a Deferred per append: the hand-off is on every
   * append's path, and this one costs a quarter as much.
   */
  pending: Request[]
  wake: (() => void) | undefined
  stopped: StoreFailure | undefined
}

/** An append that passed its checks, sealed and encoded, waiting for its write: `sizes` are its records' framed bytes. */
type Accepted = {
  readonly req: Request
  readonly envelopes: Envelope[]
  readonly revision: number
  readonly texts: string[]
  readonly sizes: number[]
  readonly bytes: number
}

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
): Effect.Effect<EventStoreApi & ReplicaApi, StoreFailure, Scope.Scope> =>
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
      written: log.end.offset,
      streams: log.streams,
      touched: log.touched,
      head: log.head,
      hub: yield* PubSub.unbounded<Envelope>(),
      pending: [],
      wake: undefined,
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
 * What the writer decides appends against: the committed state plus the appends it has staged
 * (sealed and encoded) but not committed yet, which are `ahead` or in flight. `revisions` holds
 * only the streams of such appends: an entry goes once its last staged append is committed.
 */
type Staging = { head: Head | undefined; readonly revisions: Map<string, number>; ahead: Accepted[] }

/** A part written to the active segment whose fdatasync is under way; `failure` once it has failed. */
type Flight = { readonly part: ReadonlyArray<Accepted>; readonly synced: Promise<void>; done: boolean; failure: StoreFailure | undefined }

/**
 * At most this many parts syncing at once. Writes stay one after another, so the file never has a
 * hole where an earlier write has not landed; only the waits for the disk overlap.
 */
const MAX_FLIGHTS = 2

/**
 * Fork the group-commit writer for the scope. It stages (seals and encodes) every waiting append,
 * up to MAX_BATCH at a time, writes what it has staged as one part with one write, and starts its
 * fdatasync; while parts sync it stages what arrives and writes the next part. Parts are committed
 * (indexed, made visible, acknowledged) in order, each once it is durable. The writer can be
 * interrupted only while it has nothing staged or in flight: closing the scope lets every written
 * part land, then fails whatever is still waiting.
 */
const runBatchWriter = (w: Writer): Effect.Effect<void, never, Scope.Scope> => {
  const staging: Staging = { head: undefined, revisions: new Map(), ahead: [] }
  const flights: Flight[] = []
  const step = (restore: <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      if (w.stopped && staging.ahead.length > 0) return failAhead(staging, w.stopped)
      if (flights.length === 0 && staging.ahead.length === 0) {
        const batch = yield* restore(nextBatch(w))
        staging.head = w.head
        return yield* stageInto(w, staging, batch)
      }
      if (staging.ahead.length > 0 && flights.length < MAX_FLIGHTS && (yield* launch(w, staging, flights))) return
      const first = flights[0]!
      if ((yield* nextEvent(w, staging, first)) === "arrival")
        return yield* stageInto(w, staging, takePending(w, MAX_BATCH - staging.ahead.length))
      flights.shift()
      yield* land(w, staging, flights, first)
    })
  const loop = Effect.forever(Effect.uninterruptibleMask(step))
  // Forked inside acquire (uninterruptible): `interruptible` is what `restore` gives back.
  return Effect.asVoid(
    Effect.acquireRelease(Effect.forkDaemon(Effect.interruptible(loop)), (fiber) =>
      Effect.gen(function* () {
        const stopped = (w.stopped ??= new StoreFailure({ reason: `the event store on ${w.dir} is closed` }))
        yield* Fiber.interrupt(fiber)
        failAhead(staging, stopped)
        for (const req of takePending(w, Infinity)) req.done(Effect.fail(stopped))
      })
    )
  )
}

const takePending = (w: Writer, max: number): Request[] => {
  if (w.pending.length <= max) {
    const all = w.pending
    w.pending = []
    return all
  }
  return w.pending.splice(0, max)
}

/** The waiting appends, up to MAX_BATCH, once there is at least one. */
const nextBatch = (w: Writer): Effect.Effect<Request[]> =>
  Effect.async<Request[]>((resume) => {
    if (w.pending.length > 0) return resume(Effect.succeed(takePending(w, MAX_BATCH)))
    w.wake = () => {
      w.wake = undefined
      resume(Effect.succeed(takePending(w, MAX_BATCH)))
    }
    return Effect.sync(() => {
      w.wake = undefined
    })
  })

/** What the writer waits for while parts sync: the oldest one settling, or (while there is room to stage) an append arriving. */
const nextEvent = (w: Writer, staging: Staging, first: Flight): Effect.Effect<"arrival" | "landed"> =>
  Effect.async((resume) => {
    let settled = false
    const once = (event: "arrival" | "landed") => {
      if (settled) return
      settled = true
      w.wake = undefined
      resume(Effect.succeed(event))
    }
    if (first.done) return once("landed")
    first.synced.then(() => once("landed"))
    if (staging.ahead.length >= MAX_BATCH) return
    if (w.pending.length > 0) return once("arrival")
    w.wake = () => once("arrival")
  })

/**
 * Decide each append of a batch against what is committed and staged, and stage those accepted;
 * those refused (or arriving after a stop) are failed here.
 */
const stageInto = (w: Writer, staging: Staging, batch: Iterable<Request>): Effect.Effect<void> =>
  Effect.map(nowIso, (at) => {
    for (const req of batch) {
      if (w.stopped) {
        req.done(Effect.fail(w.stopped))
        continue
      }
      const actual = staging.revisions.get(req.stream) ?? w.streams.revision(req.stream)
      const sealed =
        "replica" in req.what
          ? replicaAppend(req.stream, req.what.replica, actual, staging.head)
          : sealAppend(req.stream, req.what.events, req.what.expected, actual, staging.head, at)
      if (Either.isLeft(sealed)) {
        req.done(Effect.fail(sealed.left))
        continue
      }
      const { envelopes, revision } = sealed.right
      const texts = envelopes.map(recordText)
      const sizes = texts.map(framedBytes)
      staging.revisions.set(req.stream, revision)
      const last = envelopes[envelopes.length - 1]!
      staging.head = { seq: last.seq, hash: last.hash }
      staging.ahead.push({ req, envelopes, revision, texts, sizes, bytes: sizes.reduce((n, b) => n + b, 0) })
    }
  })

/**
 * Write the next part of what is staged and start its sync: the staged appends that start before
 * the active segment's limit (at least one). A full segment is first sealed and the next one
 * started, once every part written to it has landed; until then nothing is launched (false).
 */
const launch = (w: Writer, staging: Staging, flights: Flight[]): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    if (w.written > 0 && w.written >= w.segmentBytes) {
      if (flights.length > 0) return false
      const rolled = yield* Effect.exit(roll(w))
      if (Exit.isFailure(rolled)) yield* failStop(w, staging, [], Cause.squash(rolled.cause) as StoreFailure)
      return true
    }
    const ahead = staging.ahead
    let j = 0
    let bytes = 0
    while (j < ahead.length && (j === 0 || w.written + bytes < w.segmentBytes)) bytes += ahead[j++]!.bytes
    const part = ahead.slice(0, j)
    staging.ahead = ahead.slice(j)
    const data = Buffer.allocUnsafe(bytes)
    part.reduce((pos, a) => writeAppend(data, pos, a.texts), 0)
    const { fh, segment } = w.active
    const wrote = yield* Effect.exit(Effect.tryPromise({ try: () => w.io.write(fh, data, w.written), catch: failure(`cannot write ${segment.file}`) }))
    if (Exit.isFailure(wrote)) {
      yield* abort(w, staging, flights, part, Cause.squash(wrote.cause) as StoreFailure)
      return true
    }
    w.written += bytes
    const flight: Flight = {
      part,
      done: false,
      failure: undefined,
      synced: w.io.sync(fh).then(
        () => {
          flight.done = true
        },
        (e) => {
          flight.done = true
          flight.failure = failure(`cannot write ${segment.file}`)(e)
        }
      )
    }
    flights.push(flight)
    return true
  })

/** The oldest part has synced (or failed to): commit and acknowledge it, or stop. */
const land = (w: Writer, staging: Staging, flights: Flight[], first: Flight): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (first.failure) return yield* abort(w, staging, flights, first.part, first.failure)
    const indexFailure = commitPart(w, staging, first.part)
    yield* PubSub.publishAll(
      w.hub,
      first.part.flatMap((a) => a.envelopes)
    )
    for (const a of first.part) {
      const last = a.envelopes[a.envelopes.length - 1]!
      a.req.done(Effect.succeed({ revision: a.revision, head: { seq: last.seq, hash: last.hash }, envelopes: a.envelopes }))
    }
    // The part is durable regardless; what was written after it is cut, as after a failed write.
    if (indexFailure) yield* abort(w, staging, flights, [], indexFailure)
  })

/**
 * Something failed with `failed` not committed: let the parts still syncing settle, then cut the
 * file back to what is committed, fail them, `failed` and everything staged, and stop.
 */
const abort = (w: Writer, staging: Staging, flights: Flight[], failed: ReadonlyArray<Accepted>, cause: StoreFailure): Effect.Effect<void> =>
  Effect.gen(function* () {
    const later = flights.splice(0)
    yield* Effect.promise(() => Promise.all(later.map((f) => f.synced)))
    yield* failStop(w, staging, [...failed, ...later.flatMap((f) => f.part)], cause)
  })

/** Fail the appends staged but not written (after a stop, or at close). */
const failAhead = (staging: Staging, failure: StoreFailure): void => {
  for (const a of staging.ahead) a.req.done(Effect.fail(failure))
  staging.ahead = []
}

/**
 * A durable part becomes the committed state, and its index entries are written, in one turn: no
 * reader sees the one without the other. The entries are not synced (open checks them). Returns
 * why the index could not be written, if it could not: the part is durable regardless.
 */
const commitPart = (w: Writer, staging: Staging, part: ReadonlyArray<Accepted>): StoreFailure | undefined => {
  const firstSeq = part[0]!.envelopes[0]!.seq
  const entries: IndexEntry[] = []
  let offset = w.size
  for (const a of part) {
    if (staging.revisions.get(a.req.stream) === a.revision) staging.revisions.delete(a.req.stream)
    a.envelopes.forEach((e, i) => {
      entries.push(w.streams.advance(e.stream, e.seq, offset))
      w.touched.add(e.stream)
      offset += a.sizes[i]!
    })
  }
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
    w.written = 0
    w.touched.clear()
    yield* closeActive(sealed)
  })

/** Refuse every later append, failing `rest` and whatever is staged behind it (not written) with the reason. */
const stop = (w: Writer, staging: Staging, rest: ReadonlyArray<Accepted>, cause: StoreFailure): Effect.Effect<void> =>
  Effect.sync(() => {
    const stopped = (w.stopped = new StoreFailure({ reason: `${cause.reason}; the store refuses further appends until it is reopened` }))
    for (const a of rest) a.req.done(Effect.fail(stopped))
    failAhead(staging, stopped)
  })

/** A write, sync or roll failed: drop what is not committed, cut the file back, and stop. */
const failStop = (w: Writer, staging: Staging, rest: ReadonlyArray<Accepted>, cause: StoreFailure): Effect.Effect<void> =>
  Effect.gen(function* () {
    // Cut back what may have reached the file, so a reopen does not resurrect a batch whose
    // callers were told it failed. If even that fails, the reopen decides by what is there.
    yield* Effect.tryPromise(() => truncateAndSync(w.io, w.active.fh, w.size)).pipe(Effect.ignore)
    w.written = w.size
    yield* stop(w, staging, rest, cause)
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

/** Hand a request to the writer. */
const request = (w: Writer, stream: string, what: Request["what"]) =>
  Effect.async<AppendResult, AppendError>((done) => {
    if (w.stopped) return done(Effect.fail(w.stopped))
    w.pending.push({ stream, what, done })
    w.wake?.()
  })

const writerApi = (w: Writer): EventStoreApi & ReplicaApi => ({
  append: (stream, events, expected) => request(w, stream, { events, expected }),
  // A replica is not decided on an expected revision: it never fails with WrongExpectedRevision.
  replicate: (stream, replica) => request(w, stream, { replica }) as Effect.Effect<AppendResult, InvalidEvent | StoreFailure>,
  read: (stream) => Effect.suspend(() => readStream(w.files, stream, w.streams.get(stream))),
  readAll: (fromSeq = 0) => readRange(w.files, fromSeq, () => nextSeq(w)),
  subscribe: (fromSeq = 0) => subscribe(w, fromSeq),
  head: Effect.sync(() => w.head)
})
