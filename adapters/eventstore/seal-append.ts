import { Either } from "effect"
import { decodeEvent, prepareEvent, sealBatch, verifyLink, type Envelope, type Head, type PreparedEvent } from "../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
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

/**
 * Decide a replica's append for a local store whose `stream` stands at revision `actual` and whose
 * log at `head`: envelopes sealed by another store, all of `stream`, taken verbatim when each is
 * the next link of this log (seq, back-pointer and own hash; seq 0 the shared genesis) and an event
 * the catalog knows in that stream. The first that is not is refused, naming its seq.
 */
export const replicaAppend = (
  stream: string,
  envelopes: ReadonlyArray<Envelope>,
  actual: number,
  head: Head | undefined
): Either.Either<{ envelopes: Envelope[]; revision: number }, InvalidEvent> => {
  const refuse = (e: Envelope | undefined, reason: string) => Either.left(InvalidEvent.of({ stream, type: e?.type ?? "-", reason }))
  if (envelopes.length === 0) return refuse(undefined, "a replicated append needs at least one envelope")
  let prev = head
  for (const e of envelopes) {
    if (e.stream !== stream) return refuse(e, `seq ${e.seq} belongs to ${e.stream}`)
    const link = verifyLink(prev, e)
    if (Either.isLeft(link)) return refuse(e, `seq ${link.left.seq} does not extend this log: ${link.left.reason}`)
    if (e.seq === 0 && e.hash !== GENESIS_HASH) return refuse(e, "seq 0 is not the genesis covenant every install shares")
    const decoded = decodeEvent(e)
    if (Either.isLeft(decoded)) return refuse(e, decoded.left.message)
    prev = { seq: e.seq, hash: e.hash }
  }
  return Either.right({ envelopes: [...envelopes], revision: actual + envelopes.length })
}
