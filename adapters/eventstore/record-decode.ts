import { Effect, Either } from "effect"
import { checkOwnHash, checkPosition, type Envelope, type Head } from "../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { causeText } from "../failure.ts"
import { decodePayload, type OwnFailure } from "../verify/record-check.ts"
import { firstOwnFailureOnPool, verificationPoolReady } from "../verify/envelope-pool.ts"

const corrupt = (seq: number, reason: string) => new StoreFailure({ seq, reason: `corrupted event log: ${reason}` })

/**
 * The record at `seq`, decoded (or why not), as the next link after `head`: its position and
 * back-pointer, then its own hash (`ownFailure`, asked only once the position holds), then the
 * shared genesis at seq 0. The order of the checks decides which fault a record is reported for.
 */
const linkRecord = (
  head: Head | undefined,
  seq: number,
  decoded: Either.Either<Envelope, string>,
  ownFailure: (env: Envelope) => string | undefined
): Either.Either<Envelope, StoreFailure> => {
  if (Either.isLeft(decoded)) return Either.left(corrupt(seq, decoded.left))
  const env = decoded.right
  const position = checkPosition(head, env)
  if (Either.isLeft(position)) return Either.left(corrupt(position.left.seq, position.left.reason))
  const own = ownFailure(env)
  if (own !== undefined) return Either.left(corrupt(env.seq, own))
  if (env.seq === 0 && env.hash !== GENESIS_HASH) return Either.left(corrupt(seq, "seq 0 is not the genesis covenant every install shares"))
  return Either.right(env)
}

const ownHashFailure = (env: Envelope): string | undefined => {
  const own = checkOwnHash(env)
  return Either.isLeft(own) ? own.left.reason : undefined
}

/**
 * Decode the payloads of consecutive stored records, starting at `firstSeq` right after `prev`,
 * and verify each as the next link of the chain (its envelope schema, position, back-pointer and
 * own hash, and the shared genesis at seq 0). The first bad record is a StoreFailure naming its
 * seq; nothing after it is returned.
 */
export const decodeRecords = (
  payloads: ReadonlyArray<Uint8Array>,
  firstSeq: number,
  prev: Head | undefined
): Either.Either<Envelope[], StoreFailure> => {
  const out: Envelope[] = []
  let head = prev
  for (let i = 0; i < payloads.length; i++) {
    const seq = firstSeq + i
    const env = linkRecord(head, seq, decodePayload(payloads[i]!, seq), ownHashFailure)
    if (Either.isLeft(env)) return Either.left(env.left)
    out.push(env.right)
    head = env.right
  }
  return Either.right(out)
}

/** Below this many payload bytes a batch is verified inline: a few milliseconds, less than handing it over. */
const POOL_MIN_BYTES = 128 << 10

/**
 * A batch whose verification has started: its records' own hashes are being checked on worker
 * threads, and this thread has decoded them. What is left needs the head it extends.
 */
export type RecordBatchInFlight =
  | { readonly _tag: "Inline"; readonly payloads: ReadonlyArray<Uint8Array>; readonly firstSeq: number }
  | {
      readonly _tag: "Pool"
      readonly firstSeq: number
      /** Every record up to the first that does not decode. */
      readonly decoded: ReadonlyArray<Either.Either<Envelope, string>>
      readonly verdict: Promise<OwnFailure | undefined>
    }

/**
 * Start verifying a batch of consecutive records from `firstSeq`: hand a large one's own-hash
 * checks to the workers (see `adapters/verify/envelope-pool.ts`) and decode its records here
 * meanwhile. A reader of a long log starts the next batch before it finishes the current one, so
 * that the workers are never left waiting for it. Small batches are left to be verified inline,
 * and so is any batch while the workers are still loading: a short read never waits for them.
 */
export const startRecordBatch = (payloads: ReadonlyArray<Uint8Array>, firstSeq: number): Effect.Effect<RecordBatchInFlight> =>
  Effect.sync(() => {
    let bytes = 0
    for (const p of payloads) bytes += p.length
    if (bytes < POOL_MIN_BYTES || !verificationPoolReady()) return { _tag: "Inline", payloads, firstSeq }
    const verdict = firstOwnFailureOnPool(payloads, firstSeq)
    // Awaited by finishRecordBatch; until then a failure must not count as unhandled.
    verdict.catch(() => undefined)
    const decoded: Array<Either.Either<Envelope, string>> = []
    for (let i = 0; i < payloads.length; i++) {
      const d = decodePayload(payloads[i]!, firstSeq + i)
      decoded.push(d)
      if (Either.isLeft(d)) break
    }
    return { _tag: "Pool", firstSeq, decoded, verdict }
  })

/**
 * Finish a started batch as the next links after `prev`: the decisions and failures of
 * `decodeRecords` over the same records. A worker that died fails it with a StoreFailure.
 */
export const finishRecordBatch = (batch: RecordBatchInFlight, prev: Head | undefined): Effect.Effect<Envelope[], StoreFailure> => {
  if (batch._tag === "Inline") return Effect.suspend(() => decodeRecords(batch.payloads, batch.firstSeq, prev))
  const { firstSeq, decoded, verdict } = batch
  return Effect.tryPromise({
    try: () => verdict,
    catch: (e) => new StoreFailure({ reason: `cannot verify the records from seq ${firstSeq}: ${causeText(e)}` })
  }).pipe(
    Effect.flatMap((bad) => {
      const out: Envelope[] = []
      let head = prev
      // Asked only of a record whose position holds, so its seq says where it is in the batch.
      const ownFailure = (env: Envelope) => (bad !== undefined && env.seq === firstSeq + bad.index ? bad.reason : undefined)
      for (let i = 0; i < decoded.length; i++) {
        const env = linkRecord(head, firstSeq + i, decoded[i]!, ownFailure)
        if (Either.isLeft(env)) return Either.left(env.left)
        out.push(env.right)
        head = env.right
      }
      return Either.right(out)
    })
  )
}

/** `decodeRecords` for a batch of any size, large ones verified across the worker pool. */
export const decodeRecordBatch = (
  payloads: ReadonlyArray<Uint8Array>,
  firstSeq: number,
  prev: Head | undefined
): Effect.Effect<Envelope[], StoreFailure> => Effect.flatMap(startRecordBatch(payloads, firstSeq), (batch) => finishRecordBatch(batch, prev))
