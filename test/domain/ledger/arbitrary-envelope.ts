/**
 * Arbitrary inputs for checking the envelope fast paths against the reference path: values of any
 * kind canonical JSON may be asked to write, envelope-like JSON texts (well formed or not), and
 * hash chains of envelopes with arbitrary data, sealed by the reference, and then damaged.
 */
import fc from "fast-check"
import type { Envelope, Head } from "../../../domain/ledger/envelope.ts"
import { genesisEnvelope } from "../../../domain/ledger/genesis.ts"
import { referenceCanonicalize, referenceEnvelopeHash, referenceSha256Hex } from "./reference-envelope.ts"

/** Any UTF-16 code unit, lone surrogates and controls included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
const awkward = fc.constantFrom('"', "\\", "\n", "\u0000", "\u001f", "\u007f", "\u2028", "\ud800", "\udc00", "😀", "é", "0", "10", "9", "__proto__", "")
export const anyString = fc.oneof(fc.string(), fc.string({ unit: codeUnit, maxLength: 8 }), fc.string({ unit: awkward, maxLength: 4 }))

const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(-0, 0, 2 ** 53, -(2 ** 53), 1e21, 1e-7, Number.MAX_VALUE, Number.MIN_VALUE))

/** Objects built key by key, so that integer-like keys, `__proto__` and insertion order all vary. */
const objectOf = (value: fc.Arbitrary<unknown>, nullProto: boolean) =>
  fc.array(fc.tuple(anyString, value), { maxLength: 5 }).map((entries) => {
    const o: Record<string, unknown> = nullProto ? Object.create(null) : {}
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
    return o
  })

/** What canonicalize may be handed: JSON values, and what it must refuse or skip, at any depth. */
export const anyValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false, undefined, Number.NaN, Infinity, -Infinity),
    anyNumber,
    anyString,
    fc.constantFrom(new Date(0), () => 1, Symbol("s"), 1n, new Map()),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.sparseArray(tie("value"), { maxLength: 4 }),
    objectOf(tie("value"), false),
    objectOf(tie("value"), true)
  )
})).value

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/)

const validEnvelope = fc.record({
  seq: fc.nat(),
  stream: fc.oneof(fc.constantFrom("keys", "chain-A", "node-n1"), anyString),
  type: fc.oneof(fc.constantFrom("ApiKeyIssued", "NodeRetired"), anyString),
  version: fc.integer({ min: 1, max: 2 ** 53 - 1 }),
  at: fc.oneof(fc.constant("2026-01-01T00:00:00.000Z"), anyString),
  data: fc.jsonValue(),
  prev: hex64,
  hash: hex64
})

const fields = ["seq", "stream", "type", "version", "at", "data", "prev", "hash"] as const

/** One way for an envelope to stop being one: a field gone, a field of another type, a key too many. */
const spoil = fc.oneof(
  fc.record({ k: fc.constant("drop" as const), field: fc.constantFrom(...fields) }),
  fc.record({ k: fc.constant("retype" as const), field: fc.constantFrom(...fields), value: fc.oneof(anyNumber, fc.jsonValue()) }),
  fc.record({ k: fc.constant("extra" as const), key: fc.oneof(anyString, fc.constantFrom("__proto__", "constructor", "0", "Seq")), value: fc.jsonValue() })
)

/** An envelope-shaped object: often valid, else spoiled in a few ways; its keys in either order. */
const envelopeLike = fc.tuple(validEnvelope, fc.array(spoil, { maxLength: 2 }), fc.boolean()).map(([env, spoils, reverse]) => {
  const entries: Array<[string, unknown]> = Object.entries(env)
  for (const sp of spoils) {
    if (sp.k === "drop") entries.splice(entries.findIndex(([k]) => k === sp.field) >>> 0, 1)
    else if (sp.k === "retype") entries.push([sp.field, sp.value])
    else entries.push([sp.key, sp.value])
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of reverse ? entries.reverse() : entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  return out
})

/** The JSON text of a stored record: mostly envelope-like, sometimes not an object, sometimes not JSON. */
export const recordText = fc.oneof(
  { weight: 6, arbitrary: envelopeLike.map((e) => JSON.stringify(e)) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? "null") },
  // Text-level forms JSON.stringify never writes: duplicate keys, -0, whitespace, truncation.
  {
    weight: 2,
    arbitrary: fc.tuple(envelopeLike.map((e) => JSON.stringify(e)), fc.nat(), fc.constantFrom("dup", "neg0", "space", "cut")).map(([t, n, how]) => {
      switch (how) {
        case "dup":
          return t.replace("{", '{"seq":"x",')
        case "neg0":
          return t.replace(/"seq":[^,}]*/, '"seq":-0')
        case "space":
          return ` ${t.replaceAll(",", " ,\n\t")} `
        case "cut":
          return t.slice(0, n % (t.length + 1))
      }
    })
  }
)

export type Unsealed = Omit<Envelope, "hash">

const envelopeFields = fc.record({
  stream: fc.constantFrom("keys", "chain-A", "node-n1", "expert-0-1"),
  type: fc.constantFrom("ApiKeyIssued", "NodeRetired", "Anything"),
  version: fc.integer({ min: 1, max: 3 }),
  at: fc.constantFrom("2026-01-01T00:00:00.000Z", "x"),
  data: fc.oneof({ weight: 8, arbitrary: fc.jsonValue() }, { weight: 1, arbitrary: fc.constant(undefined) }),
  /** Bulk, so that a few hundred records cross the size where verification moves to workers. */
  padding: fc.nat({ max: 600 })
})

/** Envelopes `from` the head `prev` (the genesis when it is undefined), chained and sealed by the reference hash. */
export const sealedRun = (count: { readonly minLength: number; readonly maxLength: number }, prev?: Head) =>
  fc.array(envelopeFields, count).map((fields) => {
    const out: Envelope[] = []
    let head = prev
    if (head === undefined) {
      out.push(genesisEnvelope())
      head = { seq: 0, hash: out[0]!.hash }
    }
    for (const f of fields) {
      const data = f.data === undefined ? undefined : { value: f.data, padding: "p".repeat(f.padding) }
      const unsealed: Unsealed = { seq: head.seq + 1, stream: f.stream, type: f.type, version: f.version, at: f.at, data, prev: head.hash }
      const env: Envelope = { ...unsealed, hash: referenceEnvelopeHash(unsealed) }
      out.push(env)
      head = { seq: env.seq, hash: env.hash }
    }
    return out
  })

const encoder = new TextEncoder()

/** What can happen to stored records: their bytes, their JSON, their order. */
export type Damage =
  | { readonly k: "none" }
  | { readonly k: "flip"; readonly at: number; readonly byte: number; readonly bit: number }
  | { readonly k: "not-utf8"; readonly at: number }
  | { readonly k: "bom"; readonly at: number }
  | { readonly k: "field"; readonly at: number; readonly field: string; readonly value: unknown; readonly reseal: boolean }
  | { readonly k: "swap"; readonly at: number }
  | { readonly k: "drop"; readonly at: number }
  | { readonly k: "reorder-keys"; readonly at: number }
  | { readonly k: "text"; readonly at: number; readonly how: TextForm; readonly forged: boolean }

/**
 * Forms of a record's text that JSON.stringify never writes: the same values spelt otherwise
 * (escapes, number forms, whitespace, a key given twice), or text that is not JSON at all. A
 * forged record also carries the hash of its canonical JSON spelt the same way: what a verifier
 * that hashed the stored spelling instead of the canonical one would accept.
 */
const textForms = {
  escape: (t: string) => t.replace(/"stream":"(.)/, (_m, c: string) => `"stream":"\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
  "seq-float": (t: string) => t.replace(/"seq":(\d+)/, '"seq":$1.0'),
  "version-exp": (t: string) => t.replace(/"version":(\d+)/, '"version":$1e0'),
  "data-twice": (t: string) => t.replace('"data":', '"data":null,"data":'),
  "hash-twice": (t: string) => t.replace('"prev":', '"hash":"0","prev":'),
  spaced: (t: string) => t.replaceAll('":', '" : '),
  control: (t: string) => t.replace('"type":"', '"type":"\u0001')
} as const
export type TextForm = keyof typeof textForms
export const TEXT_FORMS = Object.keys(textForms) as ReadonlyArray<TextForm>

export const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.constant({ k: "none" as const }),
  fc.record({ k: fc.constant("flip" as const), at: fc.nat(), byte: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ k: fc.constant("not-utf8" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("bom" as const), at: fc.nat() }),
  fc.record({
    k: fc.constant("field" as const),
    at: fc.nat(),
    field: fc.constantFrom("seq", "stream", "type", "version", "at", "data", "prev", "hash", "extra"),
    value: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
    reseal: fc.boolean()
  }),
  fc.record({ k: fc.constant("swap" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("reorder-keys" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("text" as const), at: fc.nat(), how: fc.constantFrom(...TEXT_FORMS), forged: fc.boolean() })
)

/** The stored payloads of `log` after `d`. */
export const storedPayloads = (log: ReadonlyArray<Envelope>, d: Damage): Uint8Array[] => {
  const payloads = log.map((e) => encoder.encode(JSON.stringify(e)))
  if (d.k === "none" || payloads.length === 0) return payloads
  const i = d.at % payloads.length
  switch (d.k) {
    case "flip": {
      const p = payloads[i]!.slice()
      if (p.length > 0) p[d.byte % p.length]! ^= 1 << d.bit
      payloads[i] = p
      break
    }
    case "not-utf8":
      payloads[i] = Uint8Array.from([...payloads[i]!.subarray(0, 5), 0xc3, 0x28, ...payloads[i]!.subarray(5)])
      break
    case "bom":
      payloads[i] = Uint8Array.from([0xef, 0xbb, 0xbf, ...payloads[i]!])
      break
    case "field": {
      const e: Record<string, unknown> = { ...log[i]! }
      if (d.value === undefined) delete e[d.field]
      else e[d.field] = d.value
      if (d.reseal) e.hash = referenceEnvelopeHash(e as unknown as Unsealed)
      payloads[i] = encoder.encode(JSON.stringify(e))
      break
    }
    case "swap":
      if (i + 1 < payloads.length) [payloads[i], payloads[i + 1]] = [payloads[i + 1]!, payloads[i]!]
      break
    case "drop":
      payloads.splice(i, 1)
      break
    case "reorder-keys":
      payloads[i] = encoder.encode(JSON.stringify(Object.fromEntries(Object.entries(log[i]!).reverse())))
      break
    case "text": {
      const form = textForms[d.how]
      const { hash, ...unsealed } = log[i]!
      const forged = d.forged ? referenceSha256Hex(form(referenceCanonicalize(unsealed))) : hash
      payloads[i] = encoder.encode(form(JSON.stringify({ ...log[i]!, hash: forged })))
      break
    }
  }
  return payloads
}
