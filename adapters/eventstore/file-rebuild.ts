import * as fs from "node:fs"
import { Effect } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"
import { storeFailure as failure } from "../failure.ts"
import { writeAllSync } from "./file-layout.ts"
import { AppendScanner, corruptLog, type ByteSource, type FramedBatch, type Tail } from "./file-format.ts"
import { encodeEntries, encodeIndexHeader, encodeSummary, type SegmentSummary } from "./file-index.ts"
import type { StreamTable } from "./file-streams.ts"
import { decodeRecordBatch } from "./record-decode.ts"

/**
 * Decode a batch of records as the next links of the chain after `prev`. Every bulk decode of the
 * file store goes through here: reads of the log, open's tail, index rebuilds, followers.
 */
export const decodeBatch = (batch: FramedBatch, prev: Head | undefined): Effect.Effect<Envelope[], StoreFailure> =>
  decodeRecordBatch(batch.payloads, batch.firstSeq, prev, batch.checksums && { checksums: batch.checksums, offsets: batch.offsets })

export const headOf = (e: Envelope): Head => ({ seq: e.seq, hash: e.hash })

/** Where index entries go as they are derived: a file (a writer) or memory (a read-only open). */
export type IndexSink = (entries: Buffer) => void

export type Indexed = {
  /** The byte after the last whole append, and the next seq. */
  readonly end: { readonly offset: number; readonly seq: number }
  readonly head: Head | undefined
  readonly tail: Tail | undefined
}

/**
 * Read a segment's whole appends from `start`, verifying every record as the next link of the
 * chain after `prev` (framing, schema, position, back-pointer, own hash, genesis), advance
 * `streams` through them (noting each stream in `touched`), and hand their index entries to
 * `sink` batch by batch. Holds one batch at a time, whatever the length of the segment.
 */
export const indexAppends = (
  src: ByteSource,
  start: { readonly offset: number; readonly seq: number },
  prev: Head | undefined,
  streams: StreamTable,
  touched: Set<string>,
  sink: IndexSink
): Effect.Effect<Indexed, StoreFailure> =>
  Effect.gen(function* () {
    const scanner = new AppendScanner(src, start.offset, start.seq)
    let head = prev
    for (;;) {
      const batch = yield* scanner.next()
      if (batch === undefined) return { end: scanner.point, head, tail: scanner.tail }
      const envelopes = yield* decodeBatch(batch, head)
      const entries = envelopes.map((e, i) => {
        touched.add(e.stream)
        return streams.advance(e.stream, e.seq, batch.offsets[i]!)
      })
      const bytes = encodeEntries(batch.firstSeq, entries)
      yield* Effect.try({ try: () => sink(bytes), catch: failure("cannot write an event log index") })
      head = headOf(envelopes[envelopes.length - 1]!)
    }
  })

/** A sealed segment's rebuilt summary, and its last event. */
export type SealedIndex = { readonly summary: SegmentSummary; readonly last: Head }

/**
 * Rebuild the index of a sealed segment (one the log has moved past) from its records, entries to
 * `sink`: it must hold exactly the events from `first` to `next - 1`, in whole appends. `streams`
 * must stand at `first`, and is advanced to `next`.
 */
export const rebuildSealed = (
  src: ByteSource,
  file: string,
  first: number,
  next: number,
  prev: Head | undefined,
  streams: StreamTable,
  sink: IndexSink
): Effect.Effect<SealedIndex, StoreFailure> =>
  Effect.gen(function* () {
    const touched = new Set<string>()
    const r = yield* indexAppends(src, { offset: 0, seq: first }, prev, streams, touched, sink)
    if (r.tail) return yield* corruptLog(r.end.seq, `segment ${file} ends inside an append (${r.tail.reason}), but the log goes on in the next segment`)
    if (r.end.seq !== next)
      return yield* corruptLog(Math.min(r.end.seq, next), `segment ${file} holds the events up to seq ${r.end.seq - 1}, but the next segment starts at seq ${next}`)
    const last = r.head!
    return { summary: { end: next, last: last.hash, streams: streams.summarize(touched) }, last }
  })

/**
 * Write a sealed segment's index as `build` derives it, to a temporary file renamed over the old
 * one once whole, so that a crash leaves the old index or the new, never a mix.
 */
export const writeSealedIndex = (
  index: string,
  first: number,
  build: (sink: IndexSink) => Effect.Effect<SealedIndex, StoreFailure>
): Effect.Effect<SealedIndex, StoreFailure> => {
  const tmp = `${index}.tmp`
  const io = <A>(f: () => A) => Effect.try({ try: f, catch: failure(`cannot write ${index}`) })
  return Effect.acquireUseRelease(
    io(() => fs.openSync(tmp, "w", 0o644)),
    (fd) =>
      Effect.gen(function* () {
        let size = 0
        const put = (b: Buffer) => {
          writeAllSync(fd, b, size)
          size += b.length
        }
        yield* io(() => put(encodeIndexHeader(first)))
        const built = yield* build(put)
        yield* io(() => {
          put(encodeSummary(built.summary))
          fs.fdatasyncSync(fd)
          fs.renameSync(tmp, index)
        })
        return built
      }),
    (fd) => Effect.sync(() => fs.closeSync(fd))
  )
}
