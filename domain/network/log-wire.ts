/**
 * How the log travels on the bus (`Subjects.ledgerRead`, `Subjects.ledgerLive`). A read asks for
 * the envelopes from a seq; its answer is a status line, then one envelope per line, each exactly
 * as stored (its JSON, fields in schema order), in seq order; no envelopes means the reader has
 * caught up. A live message is one envelope. A follower trusts none of it: every envelope is
 * parsed against the envelope schema here and checked as the next link before it is kept.
 */
import { Either, Schema } from "effect"
import { parseEnvelope, type Envelope } from "../ledger/envelope.ts"

/** What reached a follower is not a well-formed message of the log's wire format. */
export class MalformedLogMessage extends Schema.TaggedError<MalformedLogMessage>()("MalformedLogMessage", { message: Schema.String }) {}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

const text = (data: Uint8Array): Either.Either<string, MalformedLogMessage> => {
  try {
    return Either.right(decoder.decode(data))
  } catch {
    return Either.left(new MalformedLogMessage({ message: "a log message is not UTF-8" }))
  }
}

export const encodeReadRequest = (from: number): Uint8Array => encoder.encode(JSON.stringify({ from }))

/** The seq a read asks from, or why the request is not one. */
export const decodeReadRequest = (data: Uint8Array): Either.Either<number, MalformedLogMessage> =>
  Either.flatMap(text(data), (t) => {
    let from: unknown
    try {
      from = (JSON.parse(t) as { from?: unknown } | null)?.from
    } catch {
      from = undefined
    }
    return typeof from === "number" && Number.isSafeInteger(from) && from >= 0
      ? Either.right(from)
      : Either.left(new MalformedLogMessage({ message: `a log read must be {"from": <seq ≥ 0>}, not ${JSON.stringify(t.slice(0, 80))}` }))
  })

/** An envelope as it travels: its JSON, as stored. */
export const envelopeText = (e: Envelope): string => JSON.stringify(e)

/** The bytes of one envelope on the wire (a page line, or a live message). */
export const envelopeBytes = (e: Envelope): number => encoder.encode(envelopeText(e)).length + 1

export const encodePage = (envelopes: ReadonlyArray<Envelope>): Uint8Array => encoder.encode([JSON.stringify({ ok: true }), ...envelopes.map(envelopeText)].join("\n"))

/** A refusal, as the status line of an answer with no envelopes. */
export const encodeRefusal = (reason: string): Uint8Array => encoder.encode(JSON.stringify({ error: reason }))

/** The envelopes of an answer to a read from `from`, or why it is not an answer. */
export const decodePage = (data: Uint8Array, from: number): Either.Either<ReadonlyArray<Envelope>, MalformedLogMessage> =>
  Either.flatMap(text(data), (t) => {
    const [status, ...lines] = t.split("\n")
    let head: { ok?: unknown; error?: unknown } | null = null
    try {
      head = JSON.parse(status!)
    } catch {
      // Worded below.
    }
    if (head?.ok !== true)
      return Either.left(new MalformedLogMessage({ message: typeof head?.error === "string" ? `the log server refused: ${head.error}` : "a log answer lacks its status line" }))
    return Either.all(lines.map((line, i) => parsed(line, from + i)))
  })

export const encodeLive = (e: Envelope): Uint8Array => encoder.encode(envelopeText(e))

/** The envelope of a live message. */
export const decodeLive = (data: Uint8Array): Either.Either<Envelope, MalformedLogMessage> => Either.flatMap(text(data), (t) => parsed(t, -1))

const parsed = (line: string, seq: number): Either.Either<Envelope, MalformedLogMessage> =>
  Either.mapLeft(parseEnvelope(seq, line), (e) => new MalformedLogMessage({ message: `a log message holds no envelope: ${e.message}` }))
