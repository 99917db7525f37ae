import { Either, ParseResult, Schema, type SchemaAST as AST } from "effect"
import { canonicalize } from "./jcs.ts"
import { envelopeHashInput } from "./envelope-hash-input.ts"
import { sha256Hex, ZERO_HASH } from "./hash.ts"
import { Catalog, isEventType, type EventType, type LegacyVersion, type NewEvent } from "./events.ts"
import { ChainBroken, InvalidEvent, MalformedEvent } from "./errors.ts"
import { describeStreamKind, streamKind, type StreamKind } from "./streams.ts"
import { genesisEnvelope } from "./genesis.ts"

/** The stored form of every event: `hash` chains it to the envelope at `seq - 1`. */
export const Envelope = Schema.Struct({
  seq: Schema.Int.pipe(Schema.nonNegative()),
  stream: Schema.String,
  type: Schema.String,
  version: Schema.Int.pipe(Schema.positive()),
  at: Schema.String,
  data: Schema.Unknown,
  prev: Schema.String,
  hash: Schema.String
})
export type Envelope = typeof Envelope.Type
export type Unsealed = Omit<Envelope, "hash">

/**
 * sha256 of the canonical JSON of everything but the hash, given the canonical JSON of `data`
 * (undefined when it is absent). The envelope's own keys are written out in canonical order rather
 * than walked as an object: every append and every verified record comes here.
 */
const hashWithData = (e: Omit<Unsealed, "data">, data: string | undefined): string => sha256Hex(envelopeHashInput(e, data))

/** sha256 of the canonical JSON of everything but the hash; as in any canonical object, an absent `data` has no key. */
export const envelopeHash = (e: Unsealed): string => hashWithData(e, e.data === undefined ? undefined : canonicalize(e.data))

export const seal = (e: Unsealed): Envelope => ({ ...e, hash: envelopeHash(e) })

/** Where the next envelope attaches: after the head, or at the start of the chain. */
export type Head = { readonly seq: number; readonly hash: string }
export const nextLink = (head: Head | undefined) => ({ seq: head ? head.seq + 1 : 0, prev: head ? head.hash : ZERO_HASH })

/** Why `type` may not appear in `stream`, if it may not: the catalog binds types to stream kinds. */
const bindingProblem = (stream: string, type: string, allowed: ReadonlyArray<StreamKind>): string | undefined => {
  const kind = streamKind(stream)
  if (kind === undefined) return `invalid stream name ${JSON.stringify(stream)}`
  return allowed.includes(kind) ? undefined : `${type} belongs in ${allowed.map(describeStreamKind).join(" or ")}, not ${stream}`
}

const asSchema = (s: unknown) => s as Schema.Schema<unknown, unknown>

/**
 * Check an event against the catalog and put its data in canonical encoded form, so what is
 * hashed is exactly what any replay will decode. Only current versions are written, and only to
 * the streams their type is bound to. Refuses instead of guessing.
 */
export const prepareEvent = (stream: string, event: NewEvent): Either.Either<PreparedEvent, InvalidEvent> => {
  const p = preparedData(stream, event)
  return "refused" in p
    ? Either.left(InvalidEvent.of({ stream, type: String(event.type), reason: p.refused }))
    : Either.right({ type: event.type, version: event.version, data: p.data as never, canonicalData: p.canonical })
}

/**
 * Whether a schema's encoded form of a decoded value is that value: nothing in it transforms, so
 * encoding would only copy what decoding built (appends skip it; most of the catalog is so).
 * Declarations and recursive schemas are not looked into: they are encoded.
 */
const encodesAsDecoded = (ast: AST.AST): boolean => {
  let known = plainSchemas.get(ast)
  if (known === undefined) plainSchemas.set(ast, (known = transformsNothing(ast)))
  return known
}
const plainSchemas = new WeakMap<AST.AST, boolean>()

const transformsNothing = (ast: AST.AST): boolean => {
  switch (ast._tag) {
    case "Transformation":
    case "Declaration":
    case "Suspend":
      return false
    case "Refinement":
      return transformsNothing(ast.from)
    case "Union":
      return ast.types.every(transformsNothing)
    case "TupleType":
      return ast.elements.every((e) => transformsNothing(e.type)) && ast.rest.every((r) => transformsNothing(r.type))
    case "TypeLiteral":
      return ast.propertySignatures.every((p) => transformsNothing(p.type)) && ast.indexSignatures.every((i) => transformsNothing(i.type))
    default:
      return true
  }
}

/** An event `prepareEvent` accepted: its data in canonical encoded form, and that data's canonical JSON, which its hash covers. */
export type PreparedEvent = NewEvent & { readonly canonicalData: string }

/** `prepareEvent`'s verdict: why the event is refused, or its data in canonical encoded form and as canonical JSON. */
const preparedData = (stream: string, event: NewEvent): { readonly refused: string } | { readonly data: unknown; readonly canonical: string } => {
  if (streamKind(stream) === undefined) return { refused: `invalid stream name ${JSON.stringify(stream)}` }
  if (!isEventType(event.type)) return { refused: "unknown event type" }
  const entry = Catalog[event.type]
  if (event.version !== entry.version) return { refused: `version ${event.version} is not the current version ${entry.version}` }
  const misplaced = bindingProblem(stream, event.type, entry.streams)
  if (misplaced !== undefined) return { refused: misplaced }
  const schema = asSchema(entry.schema)
  const decoded = Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(event.data)
  if (Either.isLeft(decoded)) return { refused: ParseResult.TreeFormatter.formatErrorSync(decoded.left) }
  const encoded = encodesAsDecoded(schema.ast) ? decoded : Schema.encodeEither(schema)(decoded.right)
  if (Either.isLeft(encoded)) return { refused: ParseResult.TreeFormatter.formatErrorSync(encoded.left) }
  try {
    return { data: encoded.right, canonical: canonicalize(encoded.right) }
  } catch (e) {
    return { refused: String((e as Error).message) }
  }
}

/**
 * Seal a batch for one stream after `head`; the caller has already prepared each event.
 * Seq 0 is always the genesis covenant, with its fixed timestamp, and nothing else may be.
 */
export const sealBatch = (
  head: Head | undefined,
  stream: string,
  events: ReadonlyArray<PreparedEvent>,
  at: string
): Either.Either<Envelope[], InvalidEvent> => {
  const out: Envelope[] = []
  let link = nextLink(head)
  for (const ev of events) {
    const isGenesisType = ev.type === "GenesisCovenantSealed"
    if (link.seq === 0 || isGenesisType) {
      const genesis = genesisEnvelope()
      if (link.seq !== 0) return Either.left(InvalidEvent.of({ stream, type: ev.type, reason: "the genesis covenant can only be seq 0" }))
      if (!isGenesisType || stream !== genesis.stream || ev.canonicalData !== canonicalize(genesis.data))
        return Either.left(InvalidEvent.of({ stream, type: ev.type, reason: "seq 0 must be the genesis covenant" }))
      out.push(genesis)
      link = { seq: 1, prev: genesis.hash }
      continue
    }
    const { type, version, data } = ev
    const { seq, prev } = link
    // Fields in the schema's order, which is the order records are stored in.
    const env: Envelope = { seq, stream, type, version, at, data, prev, hash: hashWithData({ seq, stream, type, version, at, prev }, ev.canonicalData) }
    out.push(env)
    link = { seq: seq + 1, prev: env.hash }
  }
  return Either.right(out)
}

/** Decoded, typed view of an envelope's payload. */
export type DecodedEvent = { [T in EventType]: { readonly type: T; readonly data: Catalog[T]["schema"]["Type"]; readonly envelope: Envelope } }[EventType]

/** How to read a stored version: its schema and streams, and the upcasters from it to the current version. */
const readerFor = (type: EventType, version: number) => {
  const entry = Catalog[type]
  if (version === entry.version) return { schema: asSchema(entry.schema), streams: entry.streams, upcasters: [] as ReadonlyArray<LegacyVersion> }
  const history: ReadonlyArray<LegacyVersion> = entry.history
  const from = history.findIndex((h) => h.version === version)
  if (from < 0) return undefined
  const stored = history[from]!
  return { schema: asSchema(stored.schema), streams: stored.streams, upcasters: history.slice(from) }
}

/**
 * Decode an envelope's payload as the version it was stored in, check its stream binding, then
 * upcast it to the current version. Unknown types and versions are errors naming the seq; the
 * hash was computed over the stored bytes, which are never rewritten.
 */
export const decodeEvent = (env: Envelope): Either.Either<DecodedEvent, MalformedEvent> => {
  const bad = (reason: string) => Either.left(MalformedEvent.of({ seq: env.seq, reason }))
  if (!isEventType(env.type)) return bad(`unknown event type ${JSON.stringify(env.type)}`)
  const reader = readerFor(env.type, env.version)
  if (reader === undefined) return bad(`${env.type} version ${env.version} is not known (current ${Catalog[env.type].version})`)
  const misplaced = bindingProblem(env.stream, env.type, reader.streams)
  if (misplaced !== undefined) return bad(misplaced)
  const decoded = Schema.decodeUnknownEither(reader.schema, { onExcessProperty: "error" })(env.data)
  if (Either.isLeft(decoded)) return bad(`${env.type}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
  const data = reader.upcasters.reduce((d, u) => u.upcast(d), decoded.right)
  return Either.right({ type: env.type, data, envelope: env } as DecodedEvent)
}

const decodeEnvelopeSchema = Schema.decodeUnknownEither(Envelope, { onExcessProperty: "error" })

const isNonNegativeInt = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0
const isPositiveInt = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x > 0

/** The envelope's fields in the schema's order: the order of the schema's output, and of what the writer stores. */
const FIELDS = ["seq", "stream", "type", "version", "at", "data", "prev", "hash"] as const

/**
 * How a value JSON.parse gave stands against the Envelope schema: not an envelope (the schema
 * says why); an envelope whose fields are in another order or lack `data` (the schema's output
 * is a copy); or one with every field in the schema's order, indistinguishable from its output.
 */
type Shape = "refused" | "envelope" | "ordered"

/**
 * The Envelope schema's decision for a value JSON.parse gave, without its parse tree: an object
 * whose own keys are the envelope's fields (`data` may be absent: it is `unknown`) and nothing
 * else, with their types.
 */
const shapeOf = (raw: unknown): Shape => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "refused"
  const r = raw as Record<string, unknown>
  const keys = Object.keys(r)
  let required = 0
  let ordered = true
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    ordered &&= k === FIELDS[i]
    switch (k) {
      case "seq":
        if (!isNonNegativeInt(r.seq)) return "refused"
        break
      case "version":
        if (!isPositiveInt(r.version)) return "refused"
        break
      case "stream":
      case "type":
      case "at":
      case "prev":
      case "hash":
        if (typeof r[k] !== "string") return "refused"
        break
      case "data":
        continue
      default:
        return "refused"
    }
    required++
  }
  return required !== 7 ? "refused" : ordered ? "ordered" : "envelope"
}

/** Parse one stored record (JSON text) into an envelope, or say what is wrong with it at `seq`. */
export const parseEnvelope = (seq: number, text: string): Either.Either<Envelope, MalformedEvent> => {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return Either.left(MalformedEvent.of({ seq, reason: `bad JSON: ${(e as Error).message}` }))
  }
  // The schema is consulted only to word a refusal; its output is the same value, the same fields
  // in the same order, as what is returned here.
  switch (shapeOf(raw)) {
    case "ordered":
      return Either.right(raw as Envelope)
    case "envelope": {
      const e = raw as Envelope
      return Either.right({ seq: e.seq, stream: e.stream, type: e.type, version: e.version, at: e.at, data: e.data, prev: e.prev, hash: e.hash })
    }
    case "refused": {
      const env = decodeEnvelopeSchema(raw)
      if (Either.isLeft(env)) return Either.left(MalformedEvent.of({ seq, reason: `bad envelope: ${ParseResult.TreeFormatter.formatErrorSync(env.left)}` }))
      return Either.right(env.right)
    }
  }
}

/** Where an envelope sits in the chain: its seq follows `prev`, and its back-pointer is `prev`'s hash. */
export const checkPosition = (prev: Head | undefined, env: Envelope): Either.Either<void, ChainBroken> => {
  const want = nextLink(prev)
  if (env.seq !== want.seq) return Either.left(ChainBroken.of({ seq: want.seq, reason: `expected seq ${want.seq}, found ${env.seq}` }))
  if (env.prev !== want.prev) return Either.left(ChainBroken.of({ seq: env.seq, reason: "prev does not match the hash of the previous event" }))
  return Either.right(undefined)
}

/** An envelope's own hash: independent of every other envelope, so it can be checked anywhere, in any order. */
export const checkOwnHash = (env: Envelope): Either.Either<void, ChainBroken> => {
  const h = envelopeHash(env)
  if (h !== env.hash) return Either.left(ChainBroken.of({ seq: env.seq, reason: `hash mismatch: stored ${env.hash.slice(0, 12)}…, computed ${h.slice(0, 12)}…` }))
  return Either.right(undefined)
}

/** Verify one link of the chain: position, back-pointer and own hash. */
export const verifyLink = (prev: Head | undefined, env: Envelope): Either.Either<void, ChainBroken> => {
  const position = checkPosition(prev, env)
  return Either.isLeft(position) ? position : checkOwnHash(env)
}

/** Verify a whole run of envelopes from seq 0 as one hash chain; the first broken link is named. */
export const verifyChain = (log: Iterable<Envelope>): Either.Either<Head | undefined, ChainBroken> => {
  let prev: Head | undefined
  for (const e of log) {
    const link = verifyLink(prev, e)
    if (Either.isLeft(link)) return Either.left(link.left)
    prev = { seq: e.seq, hash: e.hash }
  }
  return Either.right(prev)
}
