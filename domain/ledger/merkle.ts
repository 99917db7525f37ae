/**
 * The Merkle tree of the log (RFC 9162, Certificate Transparency 2.0, §2.1): its leaves are the
 * envelopes' hashes in seq order, hashed with a 0x00 prefix; interior nodes hash two children with
 * a 0x01 prefix, so no leaf can pass for a node. The tree of n leaves splits at the largest power
 * of two below n. Here: the root, maintained incrementally (`MerkleAccumulator`, O(log n) state),
 * and inclusion and consistency proofs over the leaves with their verifiers, which need only the
 * proof, the sizes and the roots (a client checks without the log).
 */
import { createHash } from "node:crypto"

export type Digest = Uint8Array

const sha256 = (...parts: ReadonlyArray<Uint8Array>): Digest => {
  const h = createHash("sha256")
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

const LEAF = Uint8Array.of(0)
const NODE = Uint8Array.of(1)

/** The hash of a leaf: an envelope's hash (its 32 bytes). */
export const leafHash = (data: Uint8Array): Digest => sha256(LEAF, data)
export const nodeHash = (left: Digest, right: Digest): Digest => sha256(NODE, left, right)

/** The root of the empty tree: sha256 of nothing. */
export const EMPTY_ROOT: Digest = sha256()

export const toHex = (d: Digest): string => Buffer.from(d).toString("hex")
export const fromHex = (hex: string): Digest => new Uint8Array(Buffer.from(hex, "hex"))

/** The leaf of an envelope, from its hash (hex): what the log's tree is built of. */
export const envelopeLeaf = (envelopeHash: string): Digest => leafHash(fromHex(envelopeHash))

/** The largest power of two strictly below n (n ≥ 2). */
const split = (n: number): number => {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/**
 * The root of a growing tree, from the roots of its perfect subtrees (one per set bit of the
 * size, largest first): appending is amortised O(1) hashes, the state O(log n) digests.
 */
export class MerkleAccumulator {
  private readonly peaks: Digest[] = []
  private count = 0

  get size(): number {
    return this.count
  }

  /** Add the next leaf, given its leaf hash. */
  push(leaf: Digest): void {
    let node = leaf
    // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
    for (let n = this.count; n & 1; n >>>= 1) node = nodeHash(this.peaks.pop()!, node)
    this.peaks.push(node)
    this.count++
  }

  /** The root now: the peaks folded right to left. */
  root(): Digest {
    if (this.peaks.length === 0) return EMPTY_ROOT
    let r = this.peaks[this.peaks.length - 1]!
    for (let i = this.peaks.length - 2; i >= 0; i--) r = nodeHash(this.peaks[i]!, r)
    return r
  }
}

/** The root of the tree over `leaves[from, to)` (leaf hashes). */
const subtreeRoot = (leaves: ReadonlyArray<Digest>, from: number, to: number): Digest => {
  const n = to - from
  if (n === 0) return EMPTY_ROOT
  if (n === 1) return leaves[from]!
  const k = split(n)
  return nodeHash(subtreeRoot(leaves, from, from + k), subtreeRoot(leaves, from + k, to))
}

export const treeRoot = (leaves: ReadonlyArray<Digest>, size = leaves.length): Digest => subtreeRoot(leaves, 0, size)

/** The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1), leaf-side first. */
export const inclusionProof = (leaves: ReadonlyArray<Digest>, index: number, size: number): ReadonlyArray<Digest> => {
  if (!(index >= 0 && index < size && size <= leaves.length)) throw new RangeError(`no leaf ${index} in a tree of ${size}`)
  const path = (m: number, from: number, to: number): Digest[] => {
    const n = to - from
    if (n === 1) return []
    const k = split(n)
    return m < k ? [...path(m, from, from + k), subtreeRoot(leaves, from + k, to)] : [...path(m - k, from + k, to), subtreeRoot(leaves, from, from + k)]
  }
  return path(index, 0, size)
}

/** Whether `proof` shows `leaf` at `index` in the tree of `size` leaves with root `root` (RFC 9162 §2.1.3.2). */
export const verifyInclusion = (leaf: Digest, index: number, size: number, proof: ReadonlyArray<Digest>, root: Digest): boolean => {
  if (!(index >= 0 && index < size)) return false
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0) return false
    if (fn & 1 || fn === sn) {
      r = nodeHash(p, r)
      if (!(fn & 1)) while (fn !== 0 && !(fn & 1)) ((fn >>>= 1), (sn >>>= 1))
    } else r = nodeHash(r, p)
    fn >>>= 1
    sn >>>= 1
  }
  return sn === 0 && equal(r, root)
}

/** The proof that the tree of `oldSize` leaves is a prefix of the tree of `newSize` (RFC 9162 §2.1.4.1). */
export const consistencyProof = (leaves: ReadonlyArray<Digest>, oldSize: number, newSize: number): ReadonlyArray<Digest> => {
  if (!(oldSize >= 0 && oldSize <= newSize && newSize <= leaves.length)) throw new RangeError(`no consistency proof from ${oldSize} to ${newSize}`)
  if (oldSize === 0 || oldSize === newSize) return []
  const subproof = (m: number, from: number, to: number, whole: boolean): Digest[] => {
    const n = to - from
    if (m === n) return whole ? [] : [subtreeRoot(leaves, from, to)]
    const k = split(n)
    return m <= k
      ? [...subproof(m, from, from + k, whole), subtreeRoot(leaves, from + k, to)]
      : [...subproof(m - k, from + k, to, false), subtreeRoot(leaves, from, from + k)]
  }
  return subproof(oldSize, 0, newSize, true)
}

/** Whether `proof` shows the tree of `oldSize` with `oldRoot` is a prefix of the one of `newSize` with `newRoot` (RFC 9162 §2.1.4.2). */
export const verifyConsistency = (oldSize: number, newSize: number, oldRoot: Digest, newRoot: Digest, proof: ReadonlyArray<Digest>): boolean => {
  if (!(oldSize >= 0 && oldSize <= newSize)) return false
  if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot)
  if (oldSize === 0) return proof.length === 0
  if (proof.length === 0) return false
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof
  let fn = oldSize - 1
  let sn = newSize - 1
  while (fn & 1) ((fn >>>= 1), (sn >>>= 1))
  let fr = path[0]!
  let sr = path[0]!
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (fn & 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (!(fn & 1)) while (fn !== 0 && !(fn & 1)) ((fn >>>= 1), (sn >>>= 1))
    } else sr = nodeHash(sr, c)
    fn >>>= 1
    sn >>>= 1
  }
  return sn === 0 && equal(fr, oldRoot) && equal(sr, newRoot)
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0

const equal = (a: Digest, b: Digest): boolean => a.length === b.length && a.every((x, i) => x === b[i])
