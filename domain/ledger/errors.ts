import { Schema } from "effect"

const atSeq = (seq: number | undefined, reason: string) => (seq === undefined ? reason : `seq ${seq}: ${reason}`)

/** The fields of an error about one record: its seq, what is wrong, and both as the message. */
const RecordFault = { seq: Schema.Number, reason: Schema.String, message: Schema.String }
type RecordFaultProps = { readonly seq: number; readonly reason: string }
const recordFault = (p: RecordFaultProps) => ({ ...p, message: atSeq(p.seq, p.reason) })

/** Anything wrong with one record of the log, always naming its seq. */
export class MalformedEvent extends Schema.TaggedError<MalformedEvent>()("MalformedEvent", RecordFault) {
  static of = (p: RecordFaultProps): MalformedEvent => new MalformedEvent(recordFault(p))
}

/** The hash chain is broken at `seq`: a record was altered, inserted, removed or reordered. */
export class ChainBroken extends Schema.TaggedError<ChainBroken>()("ChainBroken", RecordFault) {
  static of = (p: RecordFaultProps): ChainBroken => new ChainBroken(recordFault(p))
}

/** An event offered for append that the catalog refuses; nothing is written. */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", {
  stream: Schema.String,
  type: Schema.String,
  message: Schema.String
}) {
  static of({ stream, type, reason }: { readonly stream: string; readonly type: string; readonly reason: string }): InvalidEvent {
    return new InvalidEvent({ stream, type, message: `invalid ${type} for ${stream}: ${reason}` })
  }
}

export class WrongExpectedRevision extends Schema.TaggedError<WrongExpectedRevision>()("WrongExpectedRevision", {
  stream: Schema.String,
  expected: Schema.String,
  actual: Schema.Number,
  message: Schema.String
}) {
  static of(props: { readonly stream: string; readonly expected: string; readonly actual: number }): WrongExpectedRevision {
    const { stream, expected, actual } = props
    return new WrongExpectedRevision({ ...props, message: `stream ${stream}: expected revision ${expected}, actual ${actual < 0 ? "no stream" : actual}` })
  }
}

/**
 * The store cannot be used (I/O, lock held, corrupted file); names the seq where one is known.
 * Built in many places from `{ reason, seq? }`, so its message stays derived from those two.
 */
export class StoreFailure extends Schema.TaggedError<StoreFailure>()("StoreFailure", {
  reason: Schema.String,
  seq: Schema.optional(Schema.Number)
}) {
  override get message() {
    return atSeq(this.seq, this.reason)
  }
}
