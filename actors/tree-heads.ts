/**
 * Signing the log's tree head (see `domain/ledger/tree-head.ts`): the ledger's key signs the size
 * and Merkle root of the log as it stands, and the note is kept beside the log. Audit checks every
 * head it can verify: a log cut shorter than a head, or whose first events no longer have the
 * head's root, fails naming both.
 */
import { Effect, Either, Stream } from "effect"
import { EventStore, type EventStoreApi } from "../domain/ports/event-store.ts"
import { TreeHeadStore } from "../domain/ports/tree-head-store.ts"
import { envelopeLeaf, MerkleAccumulator, MerkleTree, toHex } from "../domain/ledger/merkle.ts"
import { consistencyIn } from "./log-proofs.ts"
import type { KeyPair } from "../domain/ledger/signing.ts"
import { ledgerKeyName, openTreeHead, signTreeHead, type TreeHead, type TrustedKey } from "../domain/ledger/tree-head.ts"

/** The root of the whole log, with its size. */
export const logTreeHead = Effect.gen(function* () {
  const acc = new MerkleAccumulator()
  yield* Stream.runForEach((yield* EventStore).readAll(0), (e) => Effect.sync(() => acc.push(envelopeLeaf(e.hash))))
  return { size: acc.size, root: toHex(acc.root()) }
})

/** The heads in the store that `trusted` signed, and why each other note was set aside. */
export const trustedHeads = (trusted: ReadonlyArray<TrustedKey>) =>
  Effect.map(Effect.flatMap(TreeHeadStore, (store) => store.all), (notes) => {
    const heads: Array<TreeHead & { readonly signer: string }> = []
    const setAside: string[] = []
    for (const note of notes) Either.match(openTreeHead(note, trusted), { onLeft: (why) => setAside.push(why), onRight: (h) => heads.push(h) })
    return { heads, setAside }
  })

/** The last note in the store that one of `trusted` signed, with the head it states; undefined if none. */
export const latestTrustedHead = (trusted: ReadonlyArray<TrustedKey>) =>
  Effect.map(Effect.flatMap(TreeHeadStore, (store) => store.all), (notes) => {
    // From the end: a writer signing every few seconds must not re-verify every head it ever signed.
    for (let i = notes.length - 1; i >= 0; i--) {
      const opened = openTreeHead(notes[i]!, trusted)
      if (Either.isRight(opened)) return { note: notes[i]!, head: opened.right }
    }
    return undefined
  })

/**
 * The log's Merkle tree kept as the log grows, for a long-running writer: the store given back
 * pushes the hashes of what it appends (in seq order, whatever order concurrent appends finish
 * in), so its own appends cost a leaf hash each and are never read back; `head` and `consistency`
 * read from the store only what others appended (a shared store) or what it has not seen yet. The
 * whole tree is kept (64 bytes an event) so that witnesses' consistency proofs never re-read the
 * log. The log as it stands is read before this returns.
 */
export const trackTreeHead = Effect.gen(function* () {
  const store = yield* EventStore
  const tree = new MerkleTree()
  const pending = new Map<number, string>()
  const drain = () => {
    for (let hash = pending.get(tree.size); hash !== undefined; hash = pending.get(tree.size)) {
      pending.delete(tree.size)
      tree.push(envelopeLeaf(hash))
    }
  }
  const catchUp = Effect.gen(function* () {
    drain()
    const missing = ((yield* store.head)?.seq ?? -1) + 1 - tree.size
    if (missing <= 0) return
    yield* Stream.runForEach(Stream.take(store.readAll(tree.size), missing), (e) =>
      Effect.sync(() => {
        // Appends finishing meanwhile may have pushed this one already.
        if (e.seq === tree.size) tree.push(envelopeLeaf(e.hash))
        drain()
      })
    )
  })
  yield* catchUp
  const tracked: EventStoreApi = {
    ...store,
    append: (stream, events, expected) =>
      Effect.tap(store.append(stream, events, expected), (r) =>
        Effect.sync(() => {
          for (const e of r.envelopes) if (e.seq >= tree.size) pending.set(e.seq, e.hash)
          drain()
        })
      )
  }
  return {
    store: tracked,
    head: Effect.map(catchUp, () => ({ size: tree.size, root: toHex(tree.root()) })),
    consistency: (from: number, to?: number) => Effect.flatMap(catchUp, () => consistencyIn(tree, from, to))
  }
})

/**
 * Sign the log's head with `key`, as `current` gives it (`logTreeHead` reads the log;
 * `trackTreeHead` keeps it as the log grows), unless the last head this key signed is at this size.
 */
export const signLogHead = <E, R>(key: KeyPair, current: Effect.Effect<{ readonly size: number; readonly root: string }, E, R>) =>
  Effect.gen(function* () {
    const store = yield* TreeHeadStore
    const name = ledgerKeyName(key.publicKey)
    const last = yield* latestTrustedHead([{ name, publicKey: key.publicKey }])
    const { size, root } = yield* current
    if (last?.head.size === size) return undefined
    const head = { origin: name, size, root }
    yield* store.append(signTreeHead(head, name, key.seed, key.publicKey))
    return head
  })
