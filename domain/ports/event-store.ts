import { Context, type Effect, type Stream } from "effect"
import type { Envelope, Head } from "../ledger/envelope.ts"
import type { NewEvent } from "../ledger/events.ts"
import type { InvalidEvent, StoreFailure, WrongExpectedRevision } from "../ledger/errors.ts"

/**
 * What the writer expects of the stream before its append: any state, no stream yet, a stream
 * with at least one event, or an exact revision (the 0-based index of the stream's last event).
 */
export type ExpectedRevision = "any" | "no_stream" | "stream_exists" | number

export const describeExpected = (e: ExpectedRevision): string => (typeof e === "number" ? String(e) : e)

/** Does a stream whose last event has index `actual` (-1: no stream) satisfy `expected`? */
export const revisionMatches = (expected: ExpectedRevision, actual: number): boolean =>
  expected === "any" ? true : expected === "no_stream" ? actual === -1 : expected === "stream_exists" ? actual >= 0 : expected === actual

export type AppendResult = { readonly revision: number; readonly head: Head; readonly envelopes: ReadonlyArray<Envelope> }

export interface EventStoreApi {
  /** Atomic: all events land, in order, or none do. */
  readonly append: (
    stream: string,
    events: ReadonlyArray<NewEvent>,
    expected: ExpectedRevision
  ) => Effect.Effect<AppendResult, WrongExpectedRevision | InvalidEvent | StoreFailure>
  readonly read: (stream: string) => Effect.Effect<ReadonlyArray<Envelope>, StoreFailure>
  /**
   * The log from `fromSeq` up to the head as it stands when the read starts: finite and in seq
   * order. A stream, so that a fold over a long log holds one envelope at a time, not the log.
   */
  readonly readAll: (fromSeq?: number) => Stream.Stream<Envelope, StoreFailure>
  /** Catch-up from `fromSeq`, then live, with no gap and no duplicate in between. */
  readonly subscribe: (fromSeq?: number) => Stream.Stream<Envelope, StoreFailure>
  readonly head: Effect.Effect<Head | undefined, StoreFailure>
}

/**
 * A store that holds a copy of another's log (a node's replica): envelopes sealed by the store
 * that owns the log, appended verbatim when they extend this log's head. Each is checked again as
 * the next link (seq, back-pointer, own hash) and as an event the catalog knows in its stream.
 */
export interface ReplicaApi {
  readonly replicate: (stream: string, envelopes: ReadonlyArray<Envelope>) => Effect.Effect<AppendResult, InvalidEvent | StoreFailure>
}

export class EventStore extends Context.Tag("blyan/EventStore")<EventStore, EventStoreApi>() {}
