import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Arbitrary, Either, FastCheck, Schema } from "effect"
import { Catalog, eventTypes, type NewEvent } from "../../../domain/ledger/events.ts"
import { checkOwnHash, envelopeHash, parseEnvelope, prepareEvent, sealBatch, verifyLink, type Envelope } from "../../../domain/ledger/envelope.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { canonicalize } from "../../../domain/ledger/jcs.ts"
import { keyIssued } from "../../support/events.ts"
import { anyString, anyValue, recordText, sealedRun } from "./arbitrary-envelope.ts"
import { referenceCanonicalize, referenceEnvelopeHash, referenceParseEnvelope, referenceSha256Hex } from "./reference-envelope.ts"

/** What a call returned, or the class and message of what it threw. */
const outcome = (f: () => unknown) => {
  try {
    return { value: f() }
  } catch (e) {
    return { threw: (e as Error).constructor.name, message: (e as Error).message }
  }
}

/** An Either as plain data, with the order of a value's keys, so that equal means indistinguishable. */
const plain = (r: Either.Either<Envelope, { readonly seq: number; readonly reason: string; readonly message: string }>) =>
  Either.isRight(r)
    ? { right: r.right, keys: Object.keys(r.right) }
    : { left: { tag: (r.left as { _tag?: string })._tag, seq: r.left.seq, reason: r.left.reason, message: r.left.message } }

describe("the envelope fast paths decide and hash exactly as the reference path", () => {
  it("canonicalize writes the reference's text, or refuses with the same error at the same path (property)", () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        expect(outcome(() => canonicalize(v))).toStrictEqual(outcome(() => referenceCanonicalize(v)))
      }),
      { numRuns: 2000 }
    )
  })

  it("sha256Hex is sha256 of any string (lone surrogates included) or bytes (property)", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, fc.uint8Array({ maxLength: 300 })), (x) => {
        expect(sha256Hex(x)).toBe(referenceSha256Hex(x))
      }),
      { numRuns: 1000 }
    )
  })

  it("parseEnvelope accepts and refuses what the Envelope schema does, with the same value or the same error (property)", () => {
    fc.assert(
      fc.property(recordText, fc.nat(), (text, seq) => {
        expect(plain(parseEnvelope(seq, text))).toStrictEqual(plain(referenceParseEnvelope(seq, text)))
      }),
      { numRuns: 3000 }
    )
  })

  it("envelopeHash is the hash the reference sealed with, so logs written before still verify (property)", () => {
    fc.assert(
      fc.property(sealedRun({ minLength: 0, maxLength: 20 }), (log) => {
        let prev: { seq: number; hash: string } | undefined
        for (const e of log) {
          expect(envelopeHash(e)).toBe(e.hash)
          expect(Either.isRight(checkOwnHash(e))).toBe(true)
          expect(Either.isRight(verifyLink(prev, e))).toBe(true)
          prev = { seq: e.seq, hash: e.hash }
        }
      }),
      { numRuns: 200 }
    )
  })

  it("any other hash, or any change to a hashed field, fails the own-hash check (property)", () => {
    const run = sealedRun({ minLength: 1, maxLength: 5 }).chain((log) => fc.tuple(fc.constant(log), fc.nat({ max: log.length - 1 })))
    fc.assert(
      fc.property(run, fc.constantFrom("seq", "stream", "type", "version", "at", "data", "prev", "hash"), ([log, i], field) => {
        const e = log[i]!
        const changed = { ...e, [field]: field === "seq" || field === "version" ? e[field] + 1 : field === "data" ? { other: e.data ?? null } : `${e[field]}x` }
        expect(envelopeHash(changed)).toBe(referenceEnvelopeHash(changed))
        expect(Either.isLeft(checkOwnHash(changed as Envelope))).toBe(true)
      }),
      { numRuns: 300 }
    )
  })

  it("a sealed append hashes as the reference would have (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), fc.nat(), (ns, seq) => {
        const head = { seq: seq + 1, hash: sha256Hex(`head-${seq}`) }
        const prepared = ns.map((n) => Either.getOrThrow(prepareEvent("keys", keyIssued(n))))
        for (const e of Either.getOrThrow(sealBatch(head, "keys", prepared, "2026-01-01T00:00:00.000Z"))) expect(e.hash).toBe(referenceEnvelopeHash(e))
      }),
      { numRuns: 100 }
    )
  })

  it("prepareEvent's data is the schema's decode then encode of what it was given, for every type of the catalog (property)", () => {
    for (const type of eventTypes) {
      const entry = Catalog[type]
      const schema = entry.schema as unknown as Schema.Schema<unknown, unknown>
      const stream = `${entry.streams[0]!}`.replace(/^(expert)$/, "expert-0.1").replace(/^(round|node|epoch)$/, "$1-x")
      let accepted = 0
      // Effect's own fast-check, the one its schema arbitraries are made with.
      FastCheck.assert(
        FastCheck.property(Arbitrary.make(schema), (value) => {
          const given = Schema.encodeSync(schema)(value)
          const prepared = prepareEvent(stream, { type, version: entry.version, data: given } as NewEvent)
          if (Either.isLeft(prepared)) return
          accepted++
          const reference = Schema.encodeSync(schema)(Schema.decodeUnknownSync(schema)(given))
          expect(prepared.right.data).toStrictEqual(reference)
          expect(prepared.right.canonicalData).toBe(canonicalize(reference))
        }),
        { numRuns: 20 }
      )
      expect(accepted, type).toBeGreaterThan(0)
    }
  })
})
