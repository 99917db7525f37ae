import { Effect, Either } from "effect"
import { checkOwnHash, checkPosition, type Envelope, type Head } from "../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { causeText } from "../failure.ts"
import { crc32 } from "node:zlib"
import { decodePayload } from "../verify/record-check.ts"
import { handToPool, runVerdict, verificationPoolReady, type PooledRun } from "../verify/envelope-pool.ts"

const corrupt = (seq: number, reason: string) => new StoreFailure({ seq, reason: `corrupted event log: ${reason}` })

/**
 * Payload checksums a reader of framed records left to the decode (see `AppendScanner`): each
 * payload's expected crc32, and where its record starts, to word a mismatch.
 */
export type UncheckedFrames = { readonly checksums: ReadonlyArray<number>; readonly offsets: ReadonlyArray<number> }

/** The wording of a record whose payload does not match its checksum, as every reader of the files words it. */
export const payloadChecksumMismatch = (offset: number) => `record payload checksum mismatch at byte ${offset}`

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
  prev: Head | undefined,
  frames?: UncheckedFrames
): Either.Either<Envelope[], StoreFailure> => {
  const out: Envelope[] = []
  let head = prev
  for (let i = 0; i < payloads.length; i++) {
    const seq = firstSeq + i
    if (frames !== undefined && crc32(payloads[i]!) !== frames.checksums[i]) return Either.left(corrupt(seq, payloadChecksumMismatch(frames.offsets[i]!)))
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
 * A batch whose verification has started: its records are being checked on worker threads
 * (`Pool`), or are left to be verified here (`Inline`). What is left needs the head it extends.
 */
export type RecordBatchInFlight = {
  readonly _tag: "Inline" | "Pool"
  readonly payloads: ReadonlyArray<Uint8Array>
  readonly firstSeq: number
  readonly frames: UncheckedFrames | undefined
  readonly run: PooledRun | undefined
}

/**
 * Start verifying a batch of consecutive records from `firstSeq`: hand a large one's checks to
 * the workers (see `adapters/verify/envelope-pool.ts`). A reader of a long log starts the next
 * batches before it finishes the current one, so that the workers are never left waiting for it.
 * Small batches are left to be verified inline, and so is any batch while the workers are still
 * loading: a short read never waits for them.
 */
export const startRecordBatch = (payloads: ReadonlyArray<Uint8Array>, firstSeq: number, frames?: UncheckedFrames): Effect.Effect<RecordBatchInFlight> =>
  Effect.sync(() => {
    let bytes = 0
    for (const p of payloads) bytes += p.length
    if (bytes < POOL_MIN_BYTES || !verificationPoolReady()) return { _tag: "Inline", payloads, firstSeq, frames, run: undefined }
    return { _tag: "Pool", payloads, firstSeq, frames, run: handToPool(payloads, firstSeq, frames?.checksums) }
  })

/** Decodes without refusing: the workers decide whether the bytes were UTF-8. */
const lenientUtf8 = new TextDecoder("utf-8")

/** A record's JSON as it is, or undefined where it does not parse. */
const parseAsLaidOut = (payload: Uint8Array): Envelope | undefined => {
  try {
    return JSON.parse(lenientUtf8.decode(payload))
  } catch {
    return undefined
  }
}

/**
 * Finish a started batch as the next links after `prev`: the decisions and failures of
 * `decodeRecords` over the same records. A record the workers found valid and in the writer's
 * layout is exactly its JSON, so this thread neither validates nor reshapes it; only records
 * whose verdict is in hand are parsed, so the envelopes of batches ahead do not pile up. A worker
 * that died fails the batch with a StoreFailure.
 */
export const finishRecordBatch = (batch: RecordBatchInFlight, prev: Head | undefined): Effect.Effect<Envelope[], StoreFailure> => {
  const { payloads, firstSeq, frames, run } = batch
  if (run === undefined) return Effect.suspend(() => decodeRecords(payloads, firstSeq, prev, frames))
  return Effect.tryPromise({
    try: () => runVerdict(run),
    catch: (e) => new StoreFailure({ reason: `cannot verify the records from seq ${firstSeq}: ${causeText(e)}` })
  }).pipe(
    Effect.flatMap(({ failure, irregular }) => {
      const out: Envelope[] = []
      let head = prev
      const full = new Set(irregular)
      const end = failure === undefined ? payloads.length : failure.index + 1
      for (let i = 0; i < end; i++) {
        const seq = firstSeq + i
        let own: string | undefined
        if (i === failure?.index) {
          if (failure.kind === "checksum") return Either.left(corrupt(seq, payloadChecksumMismatch(frames!.offsets[i]!)))
          if (failure.kind === "decode") return Either.left(corrupt(seq, failure.reason))
          own = failure.reason
          full.add(i)
        }
        const fast = full.has(i) ? undefined : parseAsLaidOut(payloads[i]!)
        // The common case, a record in place whose own checks the workers passed, costs two comparisons.
        if (fast !== undefined && own === undefined && seq !== 0 && fast.seq === seq && head !== undefined && fast.prev === head.hash) {
          out.push(fast)
          head = fast
          continue
        }
        const env = linkRecord(head, seq, fast === undefined ? decodePayload(payloads[i]!, seq) : Either.right(fast), () => own)
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
  prev: Head | undefined,
  frames?: UncheckedFrames
): Effect.Effect<Envelope[], StoreFailure> => Effect.flatMap(startRecordBatch(payloads, firstSeq, frames), (batch) => finishRecordBatch(batch, prev))
