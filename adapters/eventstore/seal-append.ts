import { Either } from "effect"
import { prepareEvent, sealBatch, type Envelope, type Head, type PreparedEvent } from "../../domain/ledger/envelope.ts"
import type { NewEvent } from "../../domain/ledger/events.ts"
import { InvalidEvent, WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import { describeExpected, revisionMatches, type ExpectedRevision } from "../../domain/ports/event-store.ts"

/**
 * Decide an append for a local store: `stream` stands at revision `actual` (-1: no stream) and
 * the log at `head`. Checks the expected revision and every event against the catalog, then seals
 * the events as the next links of the chain, stamped `at`. Nothing is written here.
 */
export const sealAppend = (
  stream: string,
  events: ReadonlyArray<NewEvent>,
  expected: ExpectedRevision,
  actual: number,
  head: Head | undefined,
  at: string
): Either.Either<{ envelopes: Envelope[]; revision: number }, WrongExpectedRevision | InvalidEvent> => {
  if (!revisionMatches(expected, actual)) return Either.left(WrongExpectedRevision.of({ stream, expected: describeExpected(expected), actual }))
  return Either.flatMap(prepareAppend(stream, events), (prepared) =>
    Either.map(sealBatch(head, stream, prepared, at), (envelopes) => ({ envelopes, revision: actual + envelopes.length }))
  )
}

/** An append's events checked against the catalog for `stream`, in their canonical form; an empty append is refused. */
export const prepareAppend = (stream: string, events: ReadonlyArray<NewEvent>): Either.Either<PreparedEvent[], InvalidEvent> => {
  if (events.length === 0) return Either.left(InvalidEvent.of({ stream, type: "-", reason: "an append needs at least one event" }))
  const prepared: PreparedEvent[] = []
  for (const ev of events) {
    const p = prepareEvent(stream, ev)
    if (Either.isLeft(p)) return Either.left(p.left)
    prepared.push(p.right)
  }
  return Either.right(prepared)
}
