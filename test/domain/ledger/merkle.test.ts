import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MerkleAccumulator,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type Digest
} from "../../../domain/ledger/merkle.ts"

/** RFC 9162 §2.1.1, 2.1.3.1 and 2.1.4.1 as written, over the entries themselves: the reference. */
const h = (...parts: ReadonlyArray<Uint8Array>) => {
  const x = createHash("sha256")
  for (const p of parts) x.update(p)
  return new Uint8Array(x.digest())
}
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1)
const MTH = (d: ReadonlyArray<Uint8Array>): Digest =>
  d.length === 0 ? h() : d.length === 1 ? h(Uint8Array.of(0), d[0]!) : h(Uint8Array.of(1), MTH(d.slice(0, k(d.length))), MTH(d.slice(k(d.length))))
const PATH = (m: number, d: ReadonlyArray<Uint8Array>): Digest[] =>
  d.length <= 1 ? [] : m < k(d.length) ? [...PATH(m, d.slice(0, k(d.length))), MTH(d.slice(k(d.length)))] : [...PATH(m - k(d.length), d.slice(k(d.length))), MTH(d.slice(0, k(d.length)))]
const SUBPROOF = (m: number, d: ReadonlyArray<Uint8Array>, b: boolean): Digest[] => {
  if (m === d.length) return b ? [] : [MTH(d)]
  const kk = k(d.length)
  return m <= kk ? [...SUBPROOF(m, d.slice(0, kk), b), MTH(d.slice(kk))] : [...SUBPROOF(m - kk, d.slice(kk), false), MTH(d.slice(0, kk))]
}
const PROOF = (m: number, d: ReadonlyArray<Uint8Array>) => (m === 0 || m === d.length ? [] : SUBPROOF(m, d, true))

const hex = (d: ReadonlyArray<Digest>) => d.map((x) => Buffer.from(x).toString("hex"))
const entries = (n: number) => Array.from({ length: n }, (_, i) => h(Uint8Array.of(i & 255, i >> 8, 7)))
const flip = (d: Digest, bit: number) => {
  const c = Uint8Array.from(d)
  c[(bit >> 3) % c.length]! ^= 1 << (bit & 7)
  return c
}

describe("the log's Merkle tree (RFC 9162)", () => {
  it("the accumulator's root after every append is the reference tree head of that many entries (property)", () =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 130 }), (n) => {
        const d = entries(n)
        const acc = new MerkleAccumulator()
        expect(hex([acc.root()])).toEqual(hex([EMPTY_ROOT]))
        for (let i = 0; i < n; i++) {
          acc.push(leafHash(d[i]!))
          expect(hex([acc.root()])).toEqual(hex([MTH(d.slice(0, i + 1))]))
        }
        expect(hex([treeRoot(d.map(leafHash))])).toEqual(hex([MTH(d)]))
      }),
      { numRuns: 40 }
    ))

  it("inclusion proofs are the reference's and verify; a flipped bit anywhere, a shortened proof or another index does not (property)", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.nat(), fc.nat(), fc.nat(), (size, pick, bit, extra) => {
        const d = entries(size + (extra % 5))
        const leaves = d.map(leafHash)
        const m = pick % size
        const root = treeRoot(leaves, size)
        const proof = inclusionProof(leaves, m, size)
        expect(hex(proof)).toEqual(hex(PATH(m, d.slice(0, size))))
        expect(verifyInclusion(leaves[m]!, m, size, proof, root)).toBe(true)
        expect(verifyInclusion(flip(leaves[m]!, bit), m, size, proof, root)).toBe(false)
        expect(verifyInclusion(leaves[m]!, m, size, proof, flip(root, bit))).toBe(false)
        if (proof.length > 0) {
          const i = bit % proof.length
          expect(verifyInclusion(leaves[m]!, m, size, proof.map((p, j) => (j === i ? flip(p, bit) : p)), root)).toBe(false)
          expect(verifyInclusion(leaves[m]!, m, size, proof.slice(1), root)).toBe(false)
        }
        if (size > 1) expect(verifyInclusion(leaves[m]!, (m + 1) % size, size, proof, root)).toBe(false)
      }),
      { numRuns: 300 }
    ))

  it("consistency proofs are the reference's and verify for every old size; a flipped bit or a forked history does not (property)", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.nat(), fc.nat(), (newSize, pick, bit) => {
        const d = entries(newSize)
        const leaves = d.map(leafHash)
        const oldSize = pick % (newSize + 1)
        const newRoot = treeRoot(leaves, newSize)
        const oldRoot = treeRoot(leaves, oldSize)
        const proof = consistencyProof(leaves, oldSize, newSize)
        expect(hex(proof)).toEqual(hex(PROOF(oldSize, d)))
        expect(verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof)).toBe(true)
        if (oldSize > 0 && oldSize < newSize) {
          expect(verifyConsistency(oldSize, newSize, flip(oldRoot, bit), newRoot, proof)).toBe(false)
          expect(verifyConsistency(oldSize, newSize, oldRoot, flip(newRoot, bit), proof)).toBe(false)
          const i = bit % proof.length
          expect(verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof.map((p, j) => (j === i ? flip(p, bit) : p)))).toBe(false)
          // A fork: the same old size, another history behind the new head.
          const forked = [...leaves.slice(0, oldSize - 1), flip(leaves[oldSize - 1]!, bit), ...leaves.slice(oldSize)]
          expect(verifyConsistency(oldSize, newSize, oldRoot, treeRoot(forked, newSize), consistencyProof(forked, oldSize, newSize))).toBe(false)
        }
      }),
      { numRuns: 300 }
    ))
})
