import { headers, type MsgHdrs } from "nats"
import { Either } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { decodeRecords } from "./record-decode.ts"

/**
 * How the log is laid out in its JetStream stream. One message per append, on the subject of its
 * ledger stream; its data are the sealed envelopes, one JSON document per line (JSON text never
 * holds a raw newline); its headers say what a reader needs without decoding: where the append
 * sits in the chain and the ledger stream's revision after it.
 */

/**
 * The subject of a ledger stream: one token under the log's JetStream stream name. Dots become
 * `~`, a character stream names never hold, so a name such as `round-a..b` cannot make an empty
 * subject token and every name keeps its own subject.
 */
export const subjectOf = (log: string, ledgerStream: string): string => `${log}.${ledgerStream.replaceAll(".", "~")}`
export const logSubjects = (log: string): string => `${log}.>`

const H = {
  first: "Blyan-First-Seq",
  prev: "Blyan-Prev",
  last: "Blyan-Last-Seq",
  hash: "Blyan-Last-Hash",
  revision: "Blyan-Revision"
} as const

/** What the headers of one append say: its first and last seq, the hashes it links from and ends at, its stream's revision. */
export type AppendMeta = {
  readonly first: number
  readonly prev: string
  readonly last: Head
  readonly revision: number
}

/** An append ready to publish; its id is its last hash, so a retried publish of it is deduplicated. */
export type AppendMessage = {
  readonly subject: string
  readonly data: Uint8Array
  readonly id: string
  readonly meta: AppendMeta
}

/** A stored message as the reads see it. */
export type StoredAppend = {
  readonly seq: number
  readonly subject: string
  readonly header: MsgHdrs | undefined
  readonly data: Uint8Array
}

const utf8 = new TextEncoder()

export const encodeAppendMessage = (log: string, envelopes: ReadonlyArray<Envelope>, revision: number): AppendMessage => {
  const first = envelopes[0]!
  const lastEnv = envelopes[envelopes.length - 1]!
  const meta: AppendMeta = { first: first.seq, prev: first.prev, last: { seq: lastEnv.seq, hash: lastEnv.hash }, revision }
  return {
    subject: subjectOf(log, first.stream),
    data: utf8.encode(envelopes.map((e) => JSON.stringify(e)).join("\n")),
    id: meta.last.hash,
    meta
  }
}

/** Fresh headers for one publish of an append (the client adds its own to the object it is given). */
export const appendHeaders = (meta: AppendMeta): MsgHdrs => {
  const h = headers()
  h.set(H.first, String(meta.first))
  h.set(H.prev, meta.prev)
  h.set(H.last, String(meta.last.seq))
  h.set(H.hash, meta.last.hash)
  h.set(H.revision, String(meta.revision))
  return h
}

const HASH = /^[0-9a-f]{64}$/
const INT = /^(0|[1-9][0-9]{0,15})$/

/** The headers of the message at JetStream sequence `seq`, checked for shape only. */
export const readMeta = (seq: number, header: MsgHdrs | undefined): Either.Either<AppendMeta, StoreFailure> => {
  const get = (k: string) => header?.get(k) ?? ""
  const bad = (what: string) =>
    Either.left(new StoreFailure({ reason: `corrupted event log: JetStream message ${seq} is not a ledger append (${what})` }))
  const [first, last, revision, prev, hash] = [get(H.first), get(H.last), get(H.revision), get(H.prev), get(H.hash)]
  if (!INT.test(first) || !INT.test(last) || !INT.test(revision)) return bad("missing or malformed position headers")
  if (!HASH.test(prev) || !HASH.test(hash)) return bad("missing or malformed hash headers")
  if (Number(last) < Number(first)) return bad("its last seq precedes its first")
  return Either.right({ first: Number(first), prev, last: { seq: Number(last), hash }, revision: Number(revision) })
}

/**
 * Decode and verify one stored append. `after` is the head it must extend; where the reader
 * starts mid-log and does not know it, the message's own `prev` header is taken as the anchor.
 * Every envelope is checked as a link (position, back-pointer, own hash, the shared genesis), and
 * the headers and the subject must agree with what the envelopes say.
 */
export const decodeAppendMessage = (
  log: string,
  msg: StoredAppend,
  after: Head | undefined | "anchor-on-message"
): Either.Either<{ readonly meta: AppendMeta; readonly envelopes: Envelope[] }, StoreFailure> =>
  Either.gen(function* () {
    const meta = yield* readMeta(msg.seq, msg.header)
    const bad = (reason: string) => Either.left(new StoreFailure({ seq: meta.first, reason: `corrupted event log: ${reason}` }))
    const prev = after !== "anchor-on-message" ? after : meta.first === 0 ? undefined : { seq: meta.first - 1, hash: meta.prev }
    const lines = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
    const envelopes = yield* decodeRecords(splitLines(lines), meta.first, prev)
    const lastEnv = envelopes[envelopes.length - 1]!
    if (lastEnv.seq !== meta.last.seq || lastEnv.hash !== meta.last.hash || envelopes[0]!.prev !== meta.prev)
      return yield* bad(`JetStream message ${msg.seq}: its headers do not match its envelopes`)
    if (envelopes.some((e) => e.stream !== envelopes[0]!.stream) || msg.subject !== subjectOf(log, lastEnv.stream))
      return yield* bad(`JetStream message ${msg.seq}: its envelopes do not all belong to its subject ${msg.subject}`)
    return { meta, envelopes }
  })

const splitLines = (bytes: Buffer): Uint8Array[] => {
  const out: Uint8Array[] = []
  let start = 0
  for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
    out.push(bytes.subarray(start, nl))
    start = nl + 1
  }
  out.push(bytes.subarray(start))
  return out
}
