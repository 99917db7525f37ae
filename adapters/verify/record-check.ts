import { crc32 } from "node:zlib"
import { Either } from "effect"
import { checkOwnHash, parseEnvelope, type Envelope } from "../../domain/ledger/envelope.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { canonicalize } from "../../domain/ledger/jcs.ts"

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** A stored record's payload as an envelope (UTF-8, JSON, the envelope schema), or what is wrong with it. */
export const decodePayload = (payload: Uint8Array, seq: number): Either.Either<Envelope, string> => {
  let text: string
  try {
    text = utf8.decode(payload)
  } catch {
    return Either.left("record payload is not UTF-8")
  }
  const parsed = parseEnvelope(seq, text)
  return Either.isLeft(parsed) ? Either.left(parsed.left.reason) : (parsed as Either.Either<Envelope, never>)
}

/**
 * Consecutive records in one buffer, so that a worker receives them in one move: record `i` (seq
 * `firstSeq + i`) is `bytes[starts[i], ends[i])`. `checksums`, when present, holds the crc32 each
 * payload must have: the reader left that check to the job.
 */
export type RecordJob = {
  readonly bytes: Uint8Array
  readonly starts: Uint32Array
  readonly ends: Uint32Array
  readonly firstSeq: number
  readonly checksums: Uint32Array | undefined
  /** Shared between a worker and the thread that handed the job over, when both can read `bytes`: whichever takes it first checks it. */
  readonly claim: Int32Array | undefined
}

/**
 * Take a job to check it: false when the other side has. A job whose bytes were moved to its
 * worker (no `claim`) is the worker's alone.
 */
export const takeJob = (job: RecordJob, by: "worker" | "reader"): boolean =>
  job.claim === undefined ? by === "worker" : Atomics.compareExchange(job.claim, 0, 0, 1) === 0

/**
 * The first record of a job that fails what it can be checked for on its own, and why. A record
 * that fails its checksum or does not decode fails before its place in the chain is looked at;
 * one whose own hash does not hold, only after.
 */
export type OwnFailure =
  | { readonly index: number; readonly kind: "checksum" }
  | { readonly index: number; readonly kind: "decode" | "ownHash"; readonly reason: string }

/**
 * A job's verdict: its first failure, and the records before it that are valid but not in the
 * writer's layout (`irregular`), whose envelopes must be decoded in full rather than read as they
 * are laid out.
 */
export type JobVerdict = { readonly failure: OwnFailure | undefined; readonly irregular: ReadonlyArray<number> }

/** Bytes between two payloads of one buffer that are still copied with them: a record header or so. */
const MAX_GAP = 64

/** Whether `b` follows `a` in the same buffer, a few bytes on. */
const sameRun = (a: Uint8Array, b: Uint8Array) => {
  const gap = b.byteOffset - (a.byteOffset + a.length)
  return b.buffer === a.buffer && gap >= 0 && gap <= MAX_GAP
}

/**
 * Pack payloads into a job. Payloads that all lie in one shared buffer are handed over where they
 * are, as offsets into it. Otherwise those read from one file buffer lie in order in it, a record
 * header apart: each such run is copied whole, headers and all, rather than payload by payload.
 */
export const packRecords = (payloads: ReadonlyArray<Uint8Array>, firstSeq: number, checksums?: Uint32Array): RecordJob => {
  const n = payloads.length
  const starts = new Uint32Array(n)
  const ends = new Uint32Array(n)
  const shared = payloads[0]?.buffer
  if (shared instanceof SharedArrayBuffer && payloads.every((p) => p.buffer === shared)) {
    for (let i = 0; i < n; i++) {
      starts[i] = payloads[i]!.byteOffset
      ends[i] = starts[i]! + payloads[i]!.length
    }
    return { bytes: new Uint8Array(shared), starts, ends, firstSeq, checksums, claim: new Int32Array(new SharedArrayBuffer(4)) }
  }
  const runs: Array<{ readonly from: Uint8Array; readonly to: number; readonly bytes: number }> = []
  let size = 0
  for (let i = 0; i < n; ) {
    const first = payloads[i]!
    let j = i + 1
    while (j < n && sameRun(payloads[j - 1]!, payloads[j]!)) j++
    for (let k = i; k < j; k++) {
      starts[k] = size + payloads[k]!.byteOffset - first.byteOffset
      ends[k] = starts[k]! + payloads[k]!.length
    }
    const last = payloads[j - 1]!
    const bytes = last.byteOffset + last.length - first.byteOffset
    runs.push({ from: first, to: size, bytes })
    size += bytes
    i = j
  }
  const bytes = new Uint8Array(size)
  for (const r of runs) bytes.set(new Uint8Array(r.from.buffer, r.from.byteOffset, r.bytes), r.to)
  return { bytes, starts, ends, firstSeq, checksums, claim: undefined }
}

/**
 * A record as the writer lays it out (JSON.stringify of an envelope, fields in schema order), with
 * strings free of escapes and controls and plain integers: then each field's token is already its
 * canonical JSON, and the envelope is valid as soon as its `data` is one JSON value. Since `prev`
 * and `hash` hold no quote, only one tail of the text can be theirs: `data` is matched lazily,
 * which finds it sooner than backing off from the end.
 */
const WRITER_LAYOUT =
  /^\{"seq":(0|[1-9][0-9]{0,14}),"stream":("[^"\\\u0000-\u001f]*"),"type":("[^"\\\u0000-\u001f]*"),"version":([1-9][0-9]{0,14}),"at":("[^"\\\u0000-\u001f]*"),"data":(.*?),"prev":("[^"\\\u0000-\u001f]*"),"hash":"([^"\\\u0000-\u001f]*)"\}$/s

/**
 * Whether a record in the writer's layout is a valid envelope whose own hash holds, found without
 * parsing more than its `data`; undefined when it is not in that layout (or `data` is not one
 * JSON value), and the record must be decoded.
 */
const ownHashHoldsInLayout = (text: string): boolean | undefined => {
  const m = WRITER_LAYOUT.exec(text)
  if (m === null) return undefined
  let data: unknown
  try {
    data = JSON.parse(m[6]!)
  } catch {
    return undefined
  }
  return sha256Hex(`{"at":${m[5]},"data":${canonicalize(data)},"prev":${m[7]},"seq":${m[1]},"stream":${m[2]},"type":${m[3]},"version":${m[4]}}`) === m[8]
}

/**
 * Check every record of a job for what needs no other record: its checksum (if the job carries
 * them), that it decodes, and that its own hash holds. Its place in the chain (seq, back-pointer)
 * is left to whoever reads the records in order.
 */
export const checkRecords = (job: RecordJob): JobVerdict => {
  const irregular: number[] = []
  for (let i = 0; i < job.ends.length; i++) {
    const payload = job.bytes.subarray(job.starts[i]!, job.ends[i]!)
    if (job.checksums !== undefined && crc32(payload) !== job.checksums[i]) return { failure: { index: i, kind: "checksum" }, irregular }
    let text: string | undefined
    try {
      text = utf8.decode(payload)
    } catch {
      // decodePayload below words it.
    }
    if (text !== undefined && ownHashHoldsInLayout(text) === true) continue
    // Anything else is checked in full, which also words what is wrong.
    const decoded = decodePayload(payload, job.firstSeq + i)
    if (Either.isLeft(decoded)) return { failure: { index: i, kind: "decode", reason: decoded.left }, irregular }
    const own = checkOwnHash(decoded.right)
    if (Either.isLeft(own)) return { failure: { index: i, kind: "ownHash", reason: own.left.reason }, irregular }
    irregular.push(i)
  }
  return { failure: undefined, irregular }
}
