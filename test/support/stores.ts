import { Effect, Stream, type Scope } from "effect"
import type { EventStoreApi } from "../../domain/ports/event-store.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { tempDir } from "./tmp.ts"

/**
 * The memory store with a scheduling point before every call, so that concurrent commands really
 * interleave their reads and appends (the memory store alone answers each call at once).
 */
export const interleaving = (store: EventStoreApi): EventStoreApi => ({
  ...store,
  append: (stream, events, expected) => Effect.zipRight(Effect.yieldNow(), store.append(stream, events, expected)),
  read: (stream) => Effect.zipRight(Effect.yieldNow(), store.read(stream)),
  readAll: (fromSeq) => Stream.concat(Stream.execute(Effect.yieldNow()), store.readAll(fromSeq))
})

/** A process killed after `survive` appends: every later append dies (a defect), as a kill -9 would stop it. */
export const crashingAfter = (store: EventStoreApi, survive: number): EventStoreApi => {
  let left = survive
  return {
    ...store,
    append: (stream, events, expected) => (left-- > 0 ? store.append(stream, events, expected) : Effect.die(new Error(`killed before appending to ${stream}`)))
  }
}

/** Before the first append only, let `other` append first: a writer that wins the race. */
export const racedBy = (store: EventStoreApi, other: (store: EventStoreApi) => Effect.Effect<unknown, unknown>): EventStoreApi => {
  let raced = false
  return {
    ...store,
    append: (stream, events, expected) =>
      Effect.suspend(() => {
        if (raced) return store.append(stream, events, expected)
        raced = true
        return Effect.zipRight(Effect.orDie(other(store)), store.append(stream, events, expected))
      })
  }
}

/** A fresh memory event store and a file blob store in a temporary directory. */
export const freshLedger = (): Effect.Effect<{ events: EventStoreApi; blobs: Effect.Effect.Success<ReturnType<typeof makeFileBlobStore>> }, never, Scope.Scope> =>
  Effect.all({ events: makeMemoryEventStore(), blobs: makeFileBlobStore(tempDir()) })
