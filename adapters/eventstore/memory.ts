import { Effect, Layer, Stream } from "effect"
import { EventStore, type EventStoreApi, type ReplicaApi } from "../../domain/ports/event-store.ts"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { makeLogIndex, nowIso } from "./log-index.ts"

/** In-process store for tests and throwaway networks; same contract as the durable ones. */
export const makeMemoryEventStore = (initial: ReadonlyArray<Envelope> = []): Effect.Effect<EventStoreApi & ReplicaApi> =>
  Effect.gen(function* () {
    const index = yield* makeLogIndex(initial)
    const lock = yield* Effect.makeSemaphore(1)
    const commit = <E>(stage: Effect.Effect<{ envelopes: Envelope[]; revision: number }, E>) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const staged = yield* stage
          yield* index.publishStaged
          const last = staged.envelopes[staged.envelopes.length - 1]!
          return { revision: staged.revision, head: { seq: last.seq, hash: last.hash }, envelopes: staged.envelopes }
        })
      )
    return {
      append: (stream, events, expected) => commit(Effect.flatMap(nowIso, (at) => index.stage(stream, events, expected, at))),
      replicate: (stream, envelopes) => commit(Effect.suspend(() => index.stageReplica(stream, envelopes))),
      read: (stream) => Effect.sync(() => index.read(stream)),
      readAll: (fromSeq = 0) => Stream.suspend(() => Stream.fromIterable(index.readAll(fromSeq))),
      subscribe: (fromSeq = 0) => index.subscribe(fromSeq),
      head: Effect.sync(() => index.head())
    }
  })

export const MemoryEventStoreLive = Layer.effect(EventStore, makeMemoryEventStore())
