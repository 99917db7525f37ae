import { Data } from "effect"

/** Anything wrong with one record of the log, always naming its seq. */
export class MalformedEvent extends Data.TaggedError("MalformedEvent")<{ readonly seq: number; readonly reason: string }> {
  override get message() {
    return `seq ${this.seq}: ${this.reason}`
  }
}

/** The hash chain is broken at `seq`: a record was altered, inserted, removed or reordered. */
export class ChainBroken extends Data.TaggedError("ChainBroken")<{ readonly seq: number; readonly reason: string }> {
  override get message() {
    return `seq ${this.seq}: ${this.reason}`
  }
}

/** An event offered for append that the catalog refuses; nothing is written. */
export class InvalidEvent extends Data.TaggedError("InvalidEvent")<{ readonly stream: string; readonly type: string; readonly reason: string }> {
  override get message() {
    return `invalid ${this.type} for ${this.stream}: ${this.reason}`
  }
}

export class WrongExpectedRevision extends Data.TaggedError("WrongExpectedRevision")<{
  readonly stream: string
  readonly expected: string
  readonly actual: number
}> {
  override get message() {
    return `stream ${this.stream}: expected revision ${this.expected}, actual ${this.actual < 0 ? "no stream" : this.actual}`
  }
}

/** The store cannot be used (I/O, lock held, corrupted file); names the seq where one is known. */
export class StoreFailure extends Data.TaggedError("StoreFailure")<{ readonly reason: string; readonly seq?: number }> {
  override get message() {
    return this.seq === undefined ? this.reason : `seq ${this.seq}: ${this.reason}`
  }
}
