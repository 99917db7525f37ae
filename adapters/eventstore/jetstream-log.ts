import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, type Consumer, type MsgRequest, type StreamConfig, type StreamInfo } from "nats"
import { Chunk, Effect, Either, Schedule, Stream } from "effect"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { causeText } from "../failure.ts"
import type { JetStreamConnection } from "./jetstream-connection.ts"
import { logSubjects, readMeta, type AppendMeta, type StoredAppend } from "./jetstream-format.ts"

/**
 * The log's JetStream stream: created when missing, checked when found, and read by sequence
 * (JetStream's own, 1-based, dense since nothing is ever deleted) or as a stream of messages.
 * Single messages are read through the stream API, answered by the stream's leader: a direct
 * get may be answered by a lagging replica, and the writer must never see a stale revision.
 */
export type JetStreamLog = { readonly conn: JetStreamConnection; readonly name: string }

export type LogSettings = { readonly stream: string; readonly replicas: number }

/** Errors worth retrying: the server is away, restarting, or electing a leader. */
export const isTransient = (e: unknown): boolean => {
  const err = e as { code?: unknown; api_error?: { err_code?: number } } | undefined
  const code = String(err?.code ?? "")
  return ["TIMEOUT", "503", "408", "409", "DISCONNECT", "CONNECTION_REFUSED", "IDLE_HEARTBEAT"].includes(code) || err?.api_error?.err_code === 10008
}

const failure = (what: string) => (e: unknown) => new StoreFailure({ reason: `JetStream: ${what}: ${causeText(e)}` })
const attempt = <A>(what: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: failure(what) })

/** What the log must be: file storage, replicated as asked, and no limit that could ever drop an event. */
const logConfig = (s: LogSettings): Partial<StreamConfig> => ({
  name: s.stream,
  subjects: [logSubjects(s.stream)],
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
  // With no limits nothing is discarded; should an operator add one, new appends are refused, never old events dropped.
  discard: DiscardPolicy.New,
  max_msgs: -1,
  max_bytes: -1,
  max_age: 0,
  max_msgs_per_subject: -1,
  num_replicas: s.replicas,
  // The log is append-only: the server refuses to delete or purge its messages.
  deny_delete: true,
  deny_purge: true
})

/** Why an existing stream cannot hold the log, if it cannot. */
const unfit = (info: StreamInfo, s: LogSettings): string | undefined => {
  const c = info.config
  if (!c.subjects?.includes(logSubjects(s.stream))) return `it does not capture ${logSubjects(s.stream)}`
  if (c.retention !== RetentionPolicy.Limits) return `its ${c.retention} retention removes consumed messages`
  const limits = [
    ["max_msgs", c.max_msgs],
    ["max_bytes", c.max_bytes],
    ["max_age", c.max_age],
    ["max_msgs_per_subject", c.max_msgs_per_subject]
  ].filter(([, v]) => typeof v === "number" && v > 0)
  if (limits.length > 0) return `its limits (${limits.map(([k, v]) => `${k}=${v}`).join(", ")}) would drop events`
  return undefined
}

const streamInfo = (conn: JetStreamConnection, name: string) =>
  Effect.tryPromise({ try: () => conn.jsm.streams.info(name), catch: (e) => e }).pipe(
    Effect.map((i): StreamInfo | undefined => i),
    Effect.catchIf(
      (e) => (e as { code?: string }).code === "404",
      () => Effect.succeed(undefined)
    ),
    Effect.mapError(failure(`cannot look up stream ${name}`))
  )

/**
 * Open the log's stream, creating it if missing when `create` allows (a reader creates nothing:
 * to it a missing stream is an empty log); a stream that could lose events is refused.
 */
export const openLog = (conn: JetStreamConnection, s: LogSettings, create: boolean): Effect.Effect<JetStreamLog, StoreFailure> =>
  Effect.gen(function* () {
    let info = yield* streamInfo(conn, s.stream)
    if (info === undefined && !create) return { conn, name: s.stream }
    if (info === undefined) {
      // Another process may create it at the same moment: whichever wins, look again.
      const created = yield* Effect.either(attempt(`cannot create stream ${s.stream}`, () => conn.jsm.streams.add(logConfig(s))))
      info = yield* streamInfo(conn, s.stream)
      if (info === undefined) return yield* Either.match(created, { onLeft: Effect.fail, onRight: () => Effect.fail(new StoreFailure({ reason: `JetStream: stream ${s.stream} vanished after creation` })) })
    }
    const why = unfit(info, s)
    if (why !== undefined) return yield* new StoreFailure({ reason: `JetStream stream ${s.stream} on ${conn.servers} cannot hold the ledger: ${why}` })
    if (info.config.num_replicas !== s.replicas)
      yield* Effect.logWarning(`JetStream stream ${s.stream} has ${info.config.num_replicas} replica(s), not the ${s.replicas} asked for; change it with \`nats stream edit\``)
    return { conn, name: s.stream }
  })

/** The message at a JetStream sequence, or the last one on a subject; undefined when there is none. */
export const getMessage = (log: JetStreamLog, query: MsgRequest): Effect.Effect<StoredAppend | undefined, StoreFailure> =>
  Effect.tryPromise({ try: () => log.conn.jsm.streams.getMessage(log.name, query), catch: (e) => e }).pipe(
    Effect.map((m): StoredAppend | undefined => ({ seq: m.seq, subject: m.subject, header: m.header, data: m.data })),
    Effect.catchIf(
      (e) => (e as { code?: string }).code === "404",
      () => Effect.succeed(undefined)
    ),
    Effect.mapError(failure(`cannot read ${log.name} ${JSON.stringify(query)}`))
  )

/** The JetStream sequence of the last message (0: none, or no stream yet). */
export const lastSeq = (log: JetStreamLog): Effect.Effect<number, StoreFailure> =>
  Effect.map(streamInfo(log.conn, log.name), (info) => info?.state.last_seq ?? 0)

/** The headers of the message at `seq`, which must exist. */
export const metaAt = (log: JetStreamLog, seq: number): Effect.Effect<AppendMeta, StoreFailure> =>
  Effect.flatMap(getMessage(log, { seq }), (m) =>
    m === undefined ? Effect.fail(new StoreFailure({ reason: `JetStream: message ${seq} of ${log.name} is missing` })) : readMeta(seq, m.header)
  )

/** The last message's position and headers, if the log has any. */
export const lastAppend = (log: JetStreamLog): Effect.Effect<{ readonly seq: number; readonly meta: AppendMeta } | undefined, StoreFailure> =>
  Effect.flatMap(lastSeq(log), (seq) => (seq === 0 ? Effect.succeed(undefined) : Effect.map(metaAt(log, seq), (meta) => ({ seq, meta }))))

/**
 * The JetStream sequence of the message holding ledger seq `seq`, searching 1..`last` by the
 * headers (ledger seqs grow with JetStream sequences); `last + 1` when `seq` is beyond them.
 */
export const findMessage = (log: JetStreamLog, seq: number, last: number): Effect.Effect<number, StoreFailure> =>
  Effect.gen(function* () {
    if (last === 0 || seq <= 0) return 1
    if ((yield* metaAt(log, last)).last.seq < seq) return last + 1
    let lo = 1
    let hi = last
    // Invariant: the message holding `seq` is in lo..hi.
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      if ((yield* metaAt(log, mid)).last.seq < seq) lo = mid + 1
      else hi = mid
    }
    return lo
  })

const BATCH = 256
const WAIT_MS = 5_000
const RETRY = Schedule.spaced("250 millis")
const RETRIES = 240

/**
 * Pulls messages through an ordered consumer in batches no larger than what is pending, so the
 * client never buffers more than one batch, and asks for one message at a time at the live edge.
 * After a failure (the server restarted, the consumer was lost) it starts a new consumer where
 * the last one left off.
 */
class Puller {
  private consumer: Consumer | undefined
  private pending = 0
  constructor(
    private readonly log: JetStreamLog,
    private next: number,
    private readonly filter: string | undefined
  ) {}

  async batch(): Promise<StoredAppend[]> {
    try {
      this.consumer ??= await this.log.conn.js.consumers.get(this.log.name, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.next,
        ...(this.filter === undefined ? {} : { filterSubjects: this.filter })
      })
      const got: StoredAppend[] = []
      const messages = await this.consumer.fetch({ max_messages: Math.max(1, Math.min(this.pending, BATCH)), expires: WAIT_MS })
      for await (const m of messages) {
        this.pending = m.info.pending
        if (m.seq < this.next) continue
        got.push({ seq: m.seq, subject: m.subject, header: m.headers, data: m.data })
        this.next = m.seq + 1
      }
      return got
    } catch (e) {
      await this.close()
      throw e
    }
  }

  async close(): Promise<void> {
    const c = this.consumer
    this.consumer = undefined
    this.pending = 0
    await c?.delete().catch(() => false)
  }
}

/**
 * The log's messages from JetStream sequence `from` (only those on `filter` if given), in order;
 * up to and including `until` if given, else without end (live).
 */
export const messages = (
  log: JetStreamLog,
  from: number,
  options: { readonly filter?: string; readonly until?: number } = {}
): Stream.Stream<StoredAppend, StoreFailure> => {
  const { filter, until } = options
  if (until !== undefined && until < from) return Stream.empty
  return Stream.unwrapScoped(
    Effect.gen(function* () {
      const puller = yield* Effect.acquireRelease(
        Effect.sync(() => new Puller(log, from, filter)),
        (p) => Effect.promise(() => p.close())
      )
      const batch = Effect.tryPromise({ try: () => puller.batch(), catch: (e) => e }).pipe(
        Effect.retry({ schedule: RETRY, times: RETRIES, while: isTransient }),
        Effect.mapError(failure(`cannot read ${log.name} from ${from}`))
      )
      const all = Stream.repeatEffectChunk(Effect.map(batch, Chunk.unsafeFromArray))
      return until === undefined ? all : all.pipe(Stream.takeUntil((m) => m.seq >= until))
    })
  )
}
