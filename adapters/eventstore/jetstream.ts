import { Effect, Either, Stream, type Scope } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import type { EventStoreApi } from "../../domain/ports/event-store.ts"
import type { JetStreamConnection } from "./jetstream-connection.ts"
import { decodeAppendMessage, subjectOf, type StoredAppend } from "./jetstream-format.ts"
import { findMessage, getMessage, lastAppend, lastSeq, messages, openLog, type JetStreamLog, type LogSettings } from "./jetstream-log.ts"
import { defaultWriterSettings, startWriter } from "./jetstream-writer.ts"
import type { WriterSettings } from "./jetstream-writer-state.ts"

/**
 * The event store on NATS JetStream, for ledgers shared by many machines. The global log is one
 * JetStream stream (see `jetstream-format.ts` for its layout and `jetstream-writer.ts` for how
 * any number of writers extend one chain). Nothing of the log is held in memory: every read asks
 * the server, and every envelope read is verified as a link of the chain (from the genesis when
 * the read starts at seq 0; from the first message read, on its own word, when it starts later).
 *
 * `readOnly` opens the same store without appends, and creates nothing: a missing stream reads as
 * an empty log.
 */
export type JetStreamEventStoreOptions = LogSettings & { readonly readOnly?: boolean; readonly writer?: Partial<WriterSettings> }

/** Decode the messages of a read in order, each as the next link after the one before. */
const envelopesOf = (log: JetStreamLog, msgs: Stream.Stream<StoredAppend, StoreFailure>, start: Head | undefined | "anchor-on-message") =>
  Stream.suspend(() => {
    let after = start
    return msgs.pipe(
      Stream.mapEffect((m) =>
        Either.map(decodeAppendMessage(log.name, m, after), (d) => {
          after = d.meta.last
          return d.envelopes
        })
      ),
      Stream.flattenIterables
    )
  })

/** The log from `fromSeq`: to the head as of now (`live` false), or on without end. */
const logFrom = (log: JetStreamLog, fromSeq: number, live: boolean): Stream.Stream<Envelope, StoreFailure> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const last = yield* lastSeq(log)
      const start = yield* findMessage(log, fromSeq, last)
      const msgs = messages(log, start, live ? {} : { until: last })
      return envelopesOf(log, msgs, start === 1 ? undefined : "anchor-on-message").pipe(Stream.filter((e) => e.seq >= fromSeq))
    })
  )

/** One ledger stream's envelopes, checking that the revisions in the headers count them exactly. */
const readStream = (log: JetStreamLog, stream: string): Effect.Effect<ReadonlyArray<Envelope>, StoreFailure> =>
  Effect.gen(function* () {
    const subject = subjectOf(log.name, stream)
    const last = yield* getMessage(log, { last_by_subj: subject })
    if (last === undefined) return []
    const out: Envelope[] = []
    yield* messages(log, 1, { filter: subject, until: last.seq }).pipe(
      Stream.runForEach((m) =>
        Effect.flatMap(decodeAppendMessage(log.name, m, "anchor-on-message"), ({ meta, envelopes }) => {
          out.push(...envelopes)
          return meta.revision === out.length - 1
            ? Effect.void
            : Effect.fail(new StoreFailure({ seq: meta.first, reason: `corrupted event log: ${stream} revision ${meta.revision} after ${out.length} events` }))
        })
      )
    )
    return out
  })

export const makeJetStreamEventStore = (
  conn: JetStreamConnection,
  options: JetStreamEventStoreOptions
): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const log = yield* openLog(conn, options, !options.readOnly)
    const reads = {
      read: (stream: string) => readStream(log, stream),
      readAll: (fromSeq = 0) => logFrom(log, fromSeq, false),
      subscribe: (fromSeq = 0) => logFrom(log, fromSeq, true),
      head: Effect.map(lastAppend(log), (l) => l?.meta.last)
    }
    if (options.readOnly) {
      const readOnly = new StoreFailure({ reason: `the JetStream event store on ${conn.servers} is opened read-only` })
      return { ...reads, append: () => Effect.fail(readOnly) } satisfies EventStoreApi
    }
    const append = yield* startWriter(log, { ...defaultWriterSettings, ...options.writer })
    return { ...reads, append } satisfies EventStoreApi
  })
