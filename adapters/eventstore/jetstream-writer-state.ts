import type { PubAck } from "nats"
import { Data, Deferred, Effect, Either, type Queue } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { PreparedEvent } from "../../domain/ledger/envelope.ts"
import { StoreFailure, type InvalidEvent, type WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import type { AppendResult, ExpectedRevision } from "../../domain/ports/event-store.ts"
import { decodeAppendMessage, readMeta, subjectOf, type AppendMessage, type AppendMeta } from "./jetstream-format.ts"
import { getMessage, lastSeq, metaAt, type JetStreamLog } from "./jetstream-log.ts"

/** The writer's state and the reads it makes of the log; see `jetstream-writer.ts` for how it writes. */

export type WriterSettings = {
  /** How long an append waits for a server that does not answer before it fails. */
  readonly unavailableMs: number
  /** How many times an append may lose the race to other writers before it fails. */
  readonly maxRounds: number
  /** The publish acknowledgement timeout. */
  readonly ackTimeoutMs: number
}

export type AppendError = WrongExpectedRevision | InvalidEvent | StoreFailure

export type Request = {
  readonly stream: string
  readonly events: ReadonlyArray<PreparedEvent>
  readonly expected: ExpectedRevision
  /** Taken once, so that a retry at the same head is the same message. */
  readonly at: string
  readonly since: number
  readonly done: Deferred.Deferred<AppendResult, AppendError>
  /** The ids of every copy published, to recognise one that landed after its acknowledgement was lost. */
  readonly copies: string[]
  rounds: number
  problem: string | undefined
  settled: boolean
}

export type Staged = { readonly req: Request; readonly msg: AppendMessage; readonly envelopes: Envelope[] }

/** Appends published together, in order, whose acknowledgements are awaited together. */
export type Flight = {
  readonly staged: ReadonlyArray<Staged>
  /** Refused against what this writer knows; refused for good only once that is known to be current. */
  readonly suspect: ReadonlyArray<{ readonly req: Request; readonly error: WrongExpectedRevision | InvalidEvent }>
  /** Refused only because of an append still in flight, which may not land: retried after it settles. */
  readonly deferred: ReadonlyArray<Request>
  readonly outcomes: Promise<Array<PromiseSettledResult<PubAck>>>
}

/** The log changed in a way no retry can repair: a message that does not verify as the next link. */
export class LogCorrupt extends Data.TaggedError("LogCorrupt")<{ readonly failure: StoreFailure }> {}

const REVISION_CACHE = 4096
const READ_CHUNK = 256

/** Per-stream revisions as of the writer's tip; the least recently used are forgotten past a bound. */
export class RevisionCache {
  private readonly map = new Map<string, number>()
  get(stream: string): number | undefined {
    const r = this.map.get(stream)
    if (r !== undefined) {
      this.map.delete(stream)
      this.map.set(stream, r)
    }
    return r
  }
  set(stream: string, revision: number): void {
    this.map.delete(stream)
    this.map.set(stream, revision)
    if (this.map.size > REVISION_CACHE) this.map.delete(this.map.keys().next().value!)
  }
}

export type Writer = {
  readonly log: JetStreamLog
  readonly settings: WriterSettings
  readonly queue: Queue.Queue<Request>
  readonly revisions: RevisionCache
  /** Unresolved published copies by id. */
  readonly sent: Map<string, Request>
  /** The last message known to have landed: its JetStream sequence and the chain head it ends at. */
  tip: { seq: number; head: Head | undefined }
  /** Published, not yet settled, oldest first. */
  flights: Flight[]
  retry: Request[]
  stopped: StoreFailure | undefined
}

/** Where the next append attaches if everything in flight lands, and the revisions it leaves. */
export type View = { readonly seq: number; readonly head: Head | undefined; readonly lastId: string | undefined; readonly revisions: Map<string, number> }

export const viewOf = (w: Writer): View => {
  let { seq, head } = w.tip
  let lastId: string | undefined
  const revisions = new Map<string, number>()
  for (const f of w.flights)
    for (const s of f.staged) {
      seq++
      head = s.msg.meta.last
      lastId = s.msg.id
      revisions.set(s.req.stream, s.msg.meta.revision)
    }
  return { seq, head, lastId, revisions }
}

export const resolve = (w: Writer, req: Request, result: Either.Either<AppendResult, AppendError>) =>
  Effect.suspend(() => {
    req.settled = true
    for (const id of req.copies) w.sent.delete(id)
    return Deferred.complete(req.done, result)
  })

/** Take a message that landed as the new tip; if it is one of ours, its append is done. */
export const advance = (w: Writer, seq: number, landed: { readonly meta: AppendMeta; readonly envelopes: Envelope[] }) =>
  Effect.suspend(() => {
    w.tip = { seq, head: landed.meta.last }
    w.revisions.set(landed.envelopes[0]!.stream, landed.meta.revision)
    const req = w.sent.get(landed.meta.last.hash)
    return req === undefined ? Effect.void : resolve(w, req, Either.right({ revision: landed.meta.revision, head: landed.meta.last, envelopes: landed.envelopes }))
  })

/** Where a writer starts: the last message, verified as the link after the message before it. */
export const openTip = (log: JetStreamLog): Effect.Effect<Writer["tip"], StoreFailure> =>
  Effect.gen(function* () {
    const last = yield* lastSeq(log)
    if (last === 0) return { seq: 0, head: undefined }
    const m = yield* getMessage(log, { seq: last })
    if (m === undefined) return yield* new StoreFailure({ reason: `JetStream: message ${last} of ${log.name} is missing` })
    const after = last === 1 ? undefined : (yield* metaAt(log, last - 1)).last
    const { meta } = yield* decodeAppendMessage(log.name, m, after)
    return { seq: last, head: meta.last }
  })

/** Read and verify everything that landed after the tip (nothing may be in flight); how many messages that was. */
export const catchUp = (w: Writer): Effect.Effect<number, StoreFailure | LogCorrupt> =>
  Effect.gen(function* () {
    const last = yield* lastSeq(w.log)
    const start = w.tip.seq
    if (last < start)
      return yield* new LogCorrupt({
        failure: new StoreFailure({ reason: `corrupted event log: JetStream stream ${w.log.name} ends at message ${last}, but message ${start} was there` })
      })
    for (let from = start + 1; from <= last; from += READ_CHUNK) {
      const seqs = Array.from({ length: Math.min(READ_CHUNK, last - from + 1) }, (_, i) => from + i)
      const msgs = yield* Effect.forEach(seqs, (seq) => getMessage(w.log, { seq }), { concurrency: "unbounded" })
      for (let i = 0; i < seqs.length; i++) {
        const m = msgs[i]
        if (m === undefined) return yield* new StoreFailure({ reason: `JetStream: message ${seqs[i]} of ${w.log.name} is missing` })
        const decoded = decodeAppendMessage(w.log.name, m, w.tip.head)
        if (Either.isLeft(decoded)) return yield* new LogCorrupt({ failure: decoded.left })
        yield* advance(w, m.seq, decoded.right)
      }
    }
    return last - start
  })

/**
 * Make sure the revision of every stream in `streams` is known, as of the tip or from the appends
 * in flight. A stream whose last message lies beyond the tip was written by others: the log is
 * read up to it first, unless appends are in flight, when "behind" asks the caller to settle them.
 */
export const learnRevisions = (w: Writer, streams: Iterable<string>, view: View): Effect.Effect<"known" | "behind", StoreFailure | LogCorrupt> =>
  Effect.gen(function* () {
    for (;;) {
      const missing = [...streams].filter((s) => !view.revisions.has(s) && w.revisions.get(s) === undefined)
      if (missing.length === 0) return "known"
      const found = yield* Effect.forEach(missing, (s) => getMessage(w.log, { last_by_subj: subjectOf(w.log.name, s) }), { concurrency: "unbounded" })
      if (found.some((m) => m !== undefined && m.seq > w.tip.seq)) {
        if (w.flights.length > 0) return "behind"
        yield* catchUp(w)
        continue
      }
      for (let i = 0; i < missing.length; i++) {
        const m = found[i]
        if (m === undefined) w.revisions.set(missing[i]!, -1)
        else {
          const meta = readMeta(m.seq, m.header)
          if (Either.isLeft(meta)) return yield* new LogCorrupt({ failure: meta.left })
          w.revisions.set(missing[i]!, meta.right.revision)
        }
      }
      return "known"
    }
  })
