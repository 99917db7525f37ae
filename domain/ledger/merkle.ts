/**
 * The Merkle tree of the log (RFC 9162, Certificate Transparency 2.0, §2.1): its leaves are the
 * envelopes' hashes in seq order, hashed with a 0x00 prefix; interior nodes hash two children with
 * a 0x01 prefix, so no leaf can pass for a node. The tree of n leaves splits at the largest power
 * of two below n. Here: the root, maintained incrementally (`MerkleAccumulator`, O(log n) state);
 * the whole tree (`MerkleTree`) that proofs are taken from; and the proofs' verifiers, which need
 * only the proof, the sizes and the roots (a client checks without the log).
 */
import { hash } from "node:crypto"

export type Digest = Uint8Array

// One-shot: a tree hashes two small inputs per leaf, where a Hash object's setup costs more than the hashing.
const sha256 = (...parts: ReadonlyArray<Uint8Array>): Digest => hash("sha256", parts.length === 1 ? parts[0]! : Buffer.concat(parts), "buffer")

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
export const envelopeLeaf = (envelopeHash: string): Digest => leafHash(Buffer.from(envelopeHash, "hex"))

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

/** Digests in one growing byte array: a level of the tree costs 32 bytes a node, not an object each. */
class DigestList {
  private bytes = new Uint8Array(32 * 64)
  count = 0
  push(d: Digest): void {
    if ((this.count + 1) * 32 > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2)
      grown.set(this.bytes)
      this.bytes = grown
    }
    this.bytes.set(d, this.count++ * 32)
  }
  at(i: number): Digest {
    return this.bytes.subarray(i * 32, i * 32 + 32)
  }
}

/**
 * The whole tree, kept as the roots of its perfect subtrees level by level (2n digests for n
 * leaves, appended in amortised O(1) hashes). Every subtree RFC 9162's recursion asks for is a
 * perfect subtree on its left, so a root or a proof at any size up to n costs O(log² n) hashes,
 * not a pass over the leaves.
 */
export class MerkleTree {
  private readonly levels: DigestList[] = []

  static of(leaves: ReadonlyArray<Digest>): MerkleTree {
    const t = new MerkleTree()
    for (const leaf of leaves) t.push(leaf)
    return t
  }

  get size(): number {
    return this.levels[0]?.count ?? 0
  }

  /** Add the next leaf, given its leaf hash. */
  push(leaf: Digest): void {
    let node = leaf
    let index = this.size
    for (let h = 0; ; h++) {
      const level = (this.levels[h] ??= new DigestList())
      level.push(node)
      // An odd index completes a pair: their parent is the next level's newest node.
      if ((index & 1) === 0) return
      node = nodeHash(level.at(index - 1), node)
      index = Math.floor(index / 2)
    }
  }

  /** The root of the leaves `[from, to)` as the recursion of RFC 9162 splits them. */
  private subtree(from: number, to: number): Digest {
    const n = to - from
    if (n === 0) return EMPTY_ROOT
    if (isPowerOfTwo(n) && from % n === 0) return this.levels[Math.round(Math.log2(n))]!.at(from / n)
    const k = split(n)
    return nodeHash(this.subtree(from, from + k), this.subtree(from + k, to))
  }

  private within(size: number): void {
    if (!(Number.isInteger(size) && size >= 0 && size <= this.size)) throw new RangeError(`no tree of ${size} leaves among ${this.size}`)
  }

  /** The root of the tree of the first `size` leaves. */
  root(size = this.size): Digest {
    this.within(size)
    return this.subtree(0, size)
  }

  /** The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1), leaf-side first. */
  inclusionProof(index: number, size: number): ReadonlyArray<Digest> {
    this.within(size)
    if (!(index >= 0 && index < size)) throw new RangeError(`no leaf ${index} in a tree of ${size}`)
    const path = (m: number, from: number, to: number): Digest[] => {
      const n = to - from
      if (n === 1) return []
      const k = split(n)
      return m < k ? [...path(m, from, from + k), this.subtree(from + k, to)] : [...path(m - k, from + k, to), this.subtree(from, from + k)]
    }
    return path(index, 0, size)
  }

  /** The proof that the tree of `oldSize` leaves is a prefix of the tree of `newSize` (RFC 9162 §2.1.4.1). */
  consistencyProof(oldSize: number, newSize: number): ReadonlyArray<Digest> {
    this.within(newSize)
    if (!(oldSize >= 0 && oldSize <= newSize)) throw new RangeError(`no consistency proof from ${oldSize} to ${newSize}`)
    if (oldSize === 0 || oldSize === newSize) return []
    const subproof = (m: number, from: number, to: number, whole: boolean): Digest[] => {
      const n = to - from
      if (m === n) return whole ? [] : [this.subtree(from, to)]
      const k = split(n)
      return m <= k
        ? [...subproof(m, from, from + k, whole), this.subtree(from + k, to)]
        : [...subproof(m - k, from + k, to, false), this.subtree(from, from + k)]
    }
    return subproof(oldSize, 0, newSize, true)
  }
}

/** The root of the tree of the first `size` of `leaves`. */
export const treeRoot = (leaves: ReadonlyArray<Digest>, size = leaves.length): Digest => MerkleTree.of(leaves.slice(0, size)).root()

export const inclusionProof = (leaves: ReadonlyArray<Digest>, index: number, size: number): ReadonlyArray<Digest> => MerkleTree.of(leaves).inclusionProof(index, size)

export const consistencyProof = (leaves: ReadonlyArray<Digest>, oldSize: number, newSize: number): ReadonlyArray<Digest> => MerkleTree.of(leaves).consistencyProof(oldSize, newSize)

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
