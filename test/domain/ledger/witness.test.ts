import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../../domain/ledger/signing.ts"
import { consistencyProof, leafHash, toHex, treeRoot } from "../../../domain/ledger/merkle.ts"
import { cosignTreeHead, ledgerKeyName, mergeNotes, openTreeHead, signTreeHead, witnessesOf, witnessKeyName } from "../../../domain/ledger/tree-head.ts"
import { judgeHead } from "../../../domain/ledger/witness.ts"

const origin = "blyan-ledger-test"
const leavesOf = (n: number, salt = "") => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`${salt}${i}`)))
const headOf = (leaves: ReadonlyArray<Uint8Array>, size: number) => ({ origin, size, root: toHex(treeRoot(leaves, size)) })

describe("a witness's judgement of an offered head", () => {
  it("co-signs every extension shown by the log's own consistency proof, and refuses every rewrite of a witnessed event (property)", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.nat(), fc.nat(), fc.nat(), (n, a, b, c) => {
        const m = 1 + (a % n)
        const leaves = leavesOf(n)
        const held = headOf(leaves, m)
        const offered = headOf(leaves, n)
        const first = judgeHead(held, offered)
        if (m === n) {
          expect(first).toEqual({ kind: "same" })
          return
        }
        expect(first).toEqual({ kind: "prove", from: m, to: n })
        expect(judgeHead(held, offered, consistencyProof(leaves, m, n).map(toHex))).toEqual({ kind: "cosign" })
        // The same log with one witnessed event changed: whatever proof the ledger builds from it, it is a fork.
        const rewritten = [...leaves]
        rewritten[b % m] = leafHash(Buffer.from(`rewritten ${c}`))
        const forked = headOf(rewritten, n)
        expect(judgeHead(held, forked, consistencyProof(rewritten, m, n).map(toHex)).kind).toBe("fork")
        // A shorter log, or the same size with another root, is a fork without any proof.
        if (m > 1) expect(judgeHead(held, headOf(leaves, m - 1)).kind).toBe("fork")
        expect(judgeHead(held, headOf(rewritten, m)).kind).toBe("fork")
      }),
      { numRuns: 300 }
    ))

  it("co-signs the first head it meets, and refuses another log's or a malformed proof", () => {
    const leaves = leavesOf(5)
    expect(judgeHead(undefined, headOf(leaves, 5))).toEqual({ kind: "cosign" })
    expect(judgeHead(headOf(leaves, 3), { ...headOf(leaves, 5), origin: "another" }).kind).toBe("fork")
    expect(judgeHead(headOf(leaves, 3), headOf(leaves, 5), ["zz"]).kind).toBe("fork")
  })
})

describe("co-signed notes", () => {
  const ledgerSeed = sha256Hex("ledger")
  const ledger = derivePublicHex(ledgerSeed)
  const w = [1, 2].map((i) => ({ seed: sha256Hex(`witness ${i}`), publicKey: derivePublicHex(sha256Hex(`witness ${i}`)) }))
  const note = signTreeHead({ origin: ledgerKeyName(ledger), size: 7, root: "cd".repeat(32) }, ledgerKeyName(ledger), ledgerSeed, ledger)
  const by = (i: number, n = note) => cosignTreeHead(n, witnessKeyName(w[i]!.publicKey), w[i]!.seed, w[i]!.publicKey)

  it("a witness's signature is checked from its name alone; the ledger's still opens; merging keeps both witnesses once", () => {
    expect(witnessesOf(by(0))).toEqual([w[0]!.publicKey])
    expect(Either.isRight(openTreeHead(by(0), [{ name: ledgerKeyName(ledger), publicKey: ledger }]))).toBe(true)
    const merged = mergeNotes(by(0), by(1))
    expect(witnessesOf(merged)).toEqual([w[0]!.publicKey, w[1]!.publicKey])
    expect(mergeNotes(merged, by(1))).toBe(merged)
    // A witness line copied onto another head does not verify there.
    const other = signTreeHead({ origin: ledgerKeyName(ledger), size: 8, root: "cd".repeat(32) }, ledgerKeyName(ledger), ledgerSeed, ledger)
    expect(witnessesOf(mergeNotes(other, by(0)).replace(/^— blyan-ledger.*\n/m, ""))).toEqual([])
  })
})
