import { Chunk, Effect, Stream } from "effect"
import type { EventStoreApi } from "../../domain/ports/event-store.ts"

/** The log from `fromSeq` to the head, collected: tests compare whole logs. */
export const logOf = (store: EventStoreApi, fromSeq = 0) => Effect.map(Stream.runCollect(store.readAll(fromSeq)), Chunk.toArray)
