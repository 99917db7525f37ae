import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../../domain/ledger/signing.ts"
import { ledgerKeyName, openTreeHead, signTreeHead } from "../../../domain/ledger/tree-head.ts"

const seed = sha256Hex("ledger key")
const publicKey = derivePublicHex(seed)
const name = ledgerKeyName(publicKey)
const trusted = [{ name, publicKey }]
const other = { name: "someone-else", publicKey: derivePublicHex(sha256Hex("other key")) }

describe("signed tree heads (checkpoint notes)", () => {
  it("a signed head opens to what was signed under the signer's key; any changed character, or only untrusted keys, does not (property)", () =>
    fc.assert(
      fc.property(fc.nat({ max: 1e9 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), (size, rootBytes, pick) => {
        const root = Buffer.from(rootBytes).toString("hex")
        const note = signTreeHead({ origin: name, size, root }, name, seed, publicKey)
        expect(openTreeHead(note, trusted)).toEqual(Either.right({ origin: name, size, root, signer: name }))
        expect(Either.isLeft(openTreeHead(note, [other]))).toBe(true)
        // Every character of the note matters, in the text or in the signature line.
        const i = pick % (note.length - 1)
        const c = note[i]!
        const altered = note.slice(0, i) + (c === "A" ? "B" : c === "\n" ? "x" : "A") + note.slice(i + 1)
        expect(Either.isLeft(openTreeHead(altered, trusted)), JSON.stringify(altered)).toBe(true)
      }),
      { numRuns: 200 }
    ))

  it("a signature spelled in base64 other than its canonical way (unused low bits of its last character set) does not open: one signature, one note", () => {
    const note = signTreeHead({ origin: name, size: 453809044, root: "ab".repeat(32) }, name, seed, publicKey)
    // 68 bytes end in one "=": the last character before it carries 2 unused bits.
    const at = note.lastIndexOf("=") - 1
    const last = note[at]!
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    const sameBytes = alphabet[alphabet.indexOf(last) ^ 1]!
    const respelled = note.slice(0, at) + sameBytes + note.slice(at + 1)
    expect(Buffer.from(respelled.slice(respelled.lastIndexOf(" ") + 1).trim(), "base64")).toEqual(Buffer.from(note.slice(note.lastIndexOf(" ") + 1).trim(), "base64"))
    expect(Either.isLeft(openTreeHead(respelled, trusted))).toBe(true)
  })

  it("a note with a signature of another key besides the trusted one still opens with the trusted one", () => {
    const note = signTreeHead({ origin: name, size: 3, root: "ab".repeat(32) }, name, seed, publicKey)
    const foreign = signTreeHead({ origin: name, size: 3, root: "ab".repeat(32) }, other.name, sha256Hex("other key"), other.publicKey)
    const both = note + foreign.slice(foreign.indexOf("\n\n") + 2)
    expect(Either.map(openTreeHead(both, trusted), (h) => h.signer)).toEqual(Either.right(name))
    expect(Either.map(openTreeHead(both, [other]), (h) => h.signer)).toEqual(Either.right(other.name))
  })
})
