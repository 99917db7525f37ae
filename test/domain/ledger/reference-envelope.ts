/**
 * The envelope path as it was before its fast paths (commit 480ceb1): RFC 8785 canonical JSON
 * written with Object.entries, map and join; sha256 through a Hash object; every record parsed by
 * the Envelope schema; links checked in one function. The fast paths must decide exactly as this
 * does and hash exactly as this did, so that logs written before them still verify.
 */
import { createHash } from "node:crypto"
import { Either, ParseResult, Schema } from "effect"
import { Envelope, nextLink, type Head, type Unsealed } from "../../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../../domain/ledger/genesis.ts"
import { ChainBroken, MalformedEvent, StoreFailure } from "../../../domain/ledger/errors.ts"
import { NotCanonicalizable } from "../../../domain/ledger/jcs.ts"

type Path = () => string

const write = (value: unknown, path: Path): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false"
    case "string":
      return JSON.stringify(value)
    case "number":
      if (!Number.isFinite(value)) throw new NotCanonicalizable(path(), `non-finite number ${value}`)
      return JSON.stringify(value)
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v, i) => write(v, () => `${path()}[${i}]`)).join(",")}]`
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) throw new NotCanonicalizable(path(), "not a plain object")
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, () => `${path()}.${k}`)}`).join(",")}}`
    }
    default:
      throw new NotCanonicalizable(path(), `unsupported type ${typeof value}`)
  }
}

export const referenceCanonicalize = (value: unknown): string => write(value, () => "")

export const referenceSha256Hex = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

export const referenceEnvelopeHash = (e: Unsealed): string =>
  referenceSha256Hex(referenceCanonicalize({ seq: e.seq, stream: e.stream, type: e.type, version: e.version, at: e.at, data: e.data, prev: e.prev }))

export const referenceParseEnvelope = (seq: number, text: string): Either.Either<Envelope, MalformedEvent> => {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return Either.left(MalformedEvent.of({ seq, reason: `bad JSON: ${(e as Error).message}` }))
  }
  const env = Schema.decodeUnknownEither(Envelope, { onExcessProperty: "error" })(raw)
  if (Either.isLeft(env)) return Either.left(MalformedEvent.of({ seq, reason: `bad envelope: ${ParseResult.TreeFormatter.formatErrorSync(env.left)}` }))
  return Either.right(env.right)
}

const referenceVerifyLink = (prev: Head | undefined, env: Envelope): Either.Either<void, ChainBroken> => {
  const want = nextLink(prev)
  if (env.seq !== want.seq) return Either.left(ChainBroken.of({ seq: want.seq, reason: `expected seq ${want.seq}, found ${env.seq}` }))
  if (env.prev !== want.prev) return Either.left(ChainBroken.of({ seq: env.seq, reason: "prev does not match the hash of the previous event" }))
  const h = referenceEnvelopeHash(env)
  if (h !== env.hash) return Either.left(ChainBroken.of({ seq: env.seq, reason: `hash mismatch: stored ${env.hash.slice(0, 12)}…, computed ${h.slice(0, 12)}…` }))
  return Either.right(undefined)
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

export const referenceDecodeRecords = (
  payloads: ReadonlyArray<Uint8Array>,
  firstSeq: number,
  prev: Head | undefined
): Either.Either<Envelope[], StoreFailure> => {
  const out: Envelope[] = []
  let head = prev
  for (let i = 0; i < payloads.length; i++) {
    const seq = firstSeq + i
    const corrupt = (reason: string) => Either.left(new StoreFailure({ seq, reason: `corrupted event log: ${reason}` }))
    let text: string
    try {
      text = utf8.decode(payloads[i]!)
    } catch {
      return corrupt("record payload is not UTF-8")
    }
    const parsed = referenceParseEnvelope(seq, text)
    if (Either.isLeft(parsed)) return corrupt(parsed.left.reason)
    const env = parsed.right
    const link = referenceVerifyLink(head, env)
    if (Either.isLeft(link)) return Either.left(new StoreFailure({ seq: link.left.seq, reason: `corrupted event log: ${link.left.reason}` }))
    if (env.seq === 0 && env.hash !== GENESIS_HASH) return corrupt("seq 0 is not the genesis covenant every install shares")
    out.push(env)
    head = { seq: env.seq, hash: env.hash }
  }
  return Either.right(out)
}
