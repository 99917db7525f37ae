import { Clock, Effect, Either, PubSub, Stream } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { NewEvent } from "../../domain/ledger/events.ts"
import type { InvalidEvent, WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import type { ExpectedRevision } from "../../domain/ports/event-store.ts"
import { replicaAppend, sealAppend } from "./seal-append.ts"

/**
 * The in-memory view every local store shares: committed envelopes, per-stream positions and
 * live subscribers. Appends are staged first (so a batch of appends sees its own earlier
 * members), and become visible only once the adapter has made them durable.
 */
export interface LogIndex {
  readonly stage: (
    stream: string,
    events: ReadonlyArray<NewEvent>,
    expected: ExpectedRevision,
    at: string
  ) => Either.Either<{ envelopes: Envelope[]; revision: number }, WrongExpectedRevision | InvalidEvent>
  /** Stage envelopes sealed elsewhere (see `replicaAppend`). */
  readonly stageReplica: (stream: string, envelopes: ReadonlyArray<Envelope>) => Either.Either<{ envelopes: Envelope[]; revision: number }, InvalidEvent>
  readonly publishStaged: Effect.Effect<void>
  readonly dropStaged: () => void
  readonly read: (stream: string) => ReadonlyArray<Envelope>
  readonly readAll: (fromSeq: number) => ReadonlyArray<Envelope>
  readonly head: () => Head | undefined
  readonly subscribe: (fromSeq: number) => Stream.Stream<Envelope>
}

export const makeLogIndex = (initial: ReadonlyArray<Envelope>): Effect.Effect<LogIndex> =>
  Effect.gen(function* () {
    const all: Envelope[] = []
    const streams = new Map<string, number[]>()
    let pending: Envelope[] = []
    const pendingRevision = new Map<string, number>()
    const hub = yield* PubSub.unbounded<Envelope>()

    const addCommitted = (e: Envelope) => {
      all.push(e)
      const seqs = streams.get(e.stream)
      if (seqs) seqs.push(e.seq)
      else streams.set(e.stream, [e.seq])
    }
    initial.forEach(addCommitted)

    const revisionOf = (stream: string) => pendingRevision.get(stream) ?? (streams.get(stream)?.length ?? 0) - 1
    const lastOf = (xs: ReadonlyArray<Envelope>): Head | undefined => {
      const e = xs[xs.length - 1]
      return e ? { seq: e.seq, hash: e.hash } : undefined
    }

    const staged = <E>(stream: string, decided: Either.Either<{ envelopes: Envelope[]; revision: number }, E>) => {
      if (Either.isRight(decided)) {
        pending = pending.concat(decided.right.envelopes)
        pendingRevision.set(stream, decided.right.revision)
      }
      return decided
    }

    const index: LogIndex = {
      stage: (stream, events, expected, at) => staged(stream, sealAppend(stream, events, expected, revisionOf(stream), lastOf(pending) ?? lastOf(all), at)),
      stageReplica: (stream, envelopes) => staged(stream, replicaAppend(stream, envelopes, revisionOf(stream), lastOf(pending) ?? lastOf(all))),
      publishStaged: Effect.suspend(() => {
        const batch = pending
        pending = []
        pendingRevision.clear()
        batch.forEach(addCommitted)
        return PubSub.publishAll(hub, batch)
      }),
      dropStaged: () => {
        pending = []
        pendingRevision.clear()
      },
      read: (stream) => (streams.get(stream) ?? []).map((seq) => all[seq]!),
      readAll: (fromSeq) => all.slice(Math.max(0, fromSeq)),
      head: () => lastOf(all),
      subscribe: (fromSeq) =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            // Subscribe before taking the snapshot: nothing can slip between the two.
            const live = yield* PubSub.subscribe(hub)
            const snapshot = all.slice(Math.max(0, fromSeq))
            const last = snapshot.length > 0 ? snapshot[snapshot.length - 1]!.seq : fromSeq - 1
            return Stream.concat(
              Stream.fromIterable(snapshot),
              Stream.fromQueue(live).pipe(Stream.filter((e) => e.seq > last))
            )
          })
        )
    }
    return index
  })

/** The timestamp stamped on appended envelopes, from Effect's injectable clock. */
export const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())
