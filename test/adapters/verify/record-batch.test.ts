import { crc32 } from "node:zlib"
import { Effect, Either, Schedule } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "@effect/vitest"
import { decodeRecordBatch, decodeRecords, finishRecordBatch, startRecordBatch, type RecordBatchInFlight } from "../../../adapters/eventstore/record-decode.ts"
import type { Envelope, Head } from "../../../domain/ledger/envelope.ts"
import type { StoreFailure } from "../../../domain/ledger/errors.ts"
import { damage, sealedRun, storedPayloads, TEXT_FORMS } from "../../domain/ledger/arbitrary-envelope.ts"
import { referenceDecodeRecords } from "../../domain/ledger/reference-envelope.ts"
import { verificationPoolReady } from "../../../adapters/verify/envelope-pool.ts"

/** Until the workers have loaded, large batches are verified inline: wait for them, so that they are used. */
const poolLoaded = Effect.repeat(Effect.sync(verificationPoolReady), { until: (ready) => ready, schedule: Schedule.spaced("20 millis") })

/** A decode's outcome as plain data: the envelopes (and their keys' order), or the failure's seq and reason. */
const plain = (r: Either.Either<ReadonlyArray<Envelope>, StoreFailure>) =>
  Either.isRight(r) ? { right: r.right, keys: r.right.map((e) => Object.keys(e).join()) } : { left: { seq: r.left.seq, reason: r.left.reason } }

/**
 * Logs of a few hundred records with bulky data, so that most cross the size where verification
 * moves to the workers, damaged in any one way; read from any point of the chain.
 */
const damagedRead = sealedRun({ minLength: 150, maxLength: 500 }).chain((log) =>
  fc.tuple(fc.constant(log), damage, fc.nat({ max: log.length - 1 })).map(([log, d, from]) => {
    const payloads = storedPayloads(log, d).slice(from)
    const prev: Head | undefined = from === 0 ? undefined : { seq: log[from - 1]!.seq, hash: log[from - 1]!.hash }
    return { payloads, firstSeq: from, prev }
  })
)

/**
 * Payloads as a segment holds them, a record header's room apart, in shared memory (where the
 * workers read them in place, and the reader may take their jobs back), each with the checksum a
 * header would give it: a wrong one for the record at `bad`.
 */
const inSharedMemory = (payloads: ReadonlyArray<Uint8Array>, bad: number | undefined) => {
  const bytes = Buffer.from(new SharedArrayBuffer(payloads.reduce((n, p) => n + 12 + p.length, 0)))
  const views: Uint8Array[] = []
  const checksums: number[] = []
  const offsets: number[] = []
  let pos = 0
  payloads.forEach((p, i) => {
    bytes.set(p, pos + 12)
    views.push(bytes.subarray(pos + 12, pos + 12 + p.length))
    checksums.push((crc32(p) ^ (i === bad ? 1 : 0)) >>> 0)
    offsets.push(pos)
    pos += 12 + p.length
  })
  return { views, frames: { checksums, offsets } }
}

describe("record decoding: inline and on the worker pool", () => {
  it.live("decodeRecords and decodeRecordBatch decide every damaged log as the reference decoder does (property)", () =>
    Effect.zipRight(
      poolLoaded,
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(damagedRead, async ({ payloads, firstSeq, prev }) => {
            const want = plain(referenceDecodeRecords(payloads, firstSeq, prev))
            expect(plain(decodeRecords(payloads, firstSeq, prev))).toStrictEqual(want)
            expect(plain(await Effect.runPromise(Effect.either(decodeRecordBatch(payloads, firstSeq, prev))))).toStrictEqual(want)
          }),
          // Shrinking logs this long takes minutes; the failing case is reported as found.
          { numRuns: 60, endOnFailure: true }
        )
      )
    )
  )

  it.live("with checksums left to the decode and records in shared memory, a damaged log is decided as the reference decides it, a bad checksum first at its record (property)", () =>
    Effect.zipRight(
      poolLoaded,
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(damagedRead, fc.option(fc.nat(), { nil: undefined }), fc.boolean(), async ({ payloads, firstSeq, prev }, badAt, wait) => {
            const bad = badAt === undefined || payloads.length === 0 ? undefined : badAt % payloads.length
            const { views, frames } = inSharedMemory(payloads, bad)
            const reference = plain(referenceDecodeRecords(payloads, firstSeq, prev))
            const want =
              bad !== undefined && ("right" in reference || (reference.left.seq ?? 0) >= firstSeq + bad)
                ? { left: { seq: firstSeq + bad, reason: `corrupted event log: record payload checksum mismatch at byte ${frames.offsets[bad]}` } }
                : reference
            expect(plain(decodeRecords(views, firstSeq, prev, frames))).toStrictEqual(want)
            // Finished at once, this thread takes back the jobs no worker has begun; after a wait, the workers have them all.
            const started = startRecordBatch(views, firstSeq, frames)
            const finish = (b: RecordBatchInFlight) => Effect.either(finishRecordBatch(b, prev))
            const decided = Effect.flatMap(started, (b) => (wait ? Effect.zipRight(Effect.sleep("20 millis"), finish(b)) : finish(b)))
            expect(plain(await Effect.runPromise(decided))).toStrictEqual(want)
          }),
          { numRuns: 60, endOnFailure: true }
        )
      )
    )
  )

  it.live("every other spelling of a record, honest or forged, is decided as the reference decides it, wherever it is", () =>
    Effect.gen(function* () {
      yield* poolLoaded
      const [log] = fc.sample(sealedRun({ minLength: 400, maxLength: 400 }), { numRuns: 1, seed: 11 })
      for (const how of TEXT_FORMS)
        for (const forged of [false, true])
          for (const at of [1, 200, 400]) {
            const payloads = storedPayloads(log!, { k: "text", at, how, forged })
            const want = plain(referenceDecodeRecords(payloads, 0, undefined))
            expect(plain(decodeRecords(payloads, 0, undefined))).toStrictEqual(want)
            expect(plain(yield* Effect.either(decodeRecordBatch(payloads, 0, undefined)))).toStrictEqual(want)
          }
    })
  )

  it.live("batches verified at once on the pool, as a reader of a long log hands them over, agree with decoding them one by one", () =>
    Effect.gen(function* () {
      yield* poolLoaded
      const [log] = fc.sample(sealedRun({ minLength: 3000, maxLength: 3000 }), { numRuns: 1, seed: 7 })
      const payloads = storedPayloads(log!, { k: "none" })
      const starts = [0, 1000, 2000, payloads.length]
      const batches = yield* Effect.forEach(
        starts.slice(0, -1),
        (from, i) => decodeRecordBatch(payloads.slice(from, starts[i + 1]), from, from === 0 ? undefined : { seq: log![from - 1]!.seq, hash: log![from - 1]!.hash }),
        { concurrency: "unbounded" }
      )
      expect(batches.flat()).toStrictEqual(Either.getOrThrow(referenceDecodeRecords(payloads, 0, undefined)))
    })
  )
})
