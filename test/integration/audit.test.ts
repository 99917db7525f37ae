import * as fs from "node:fs"
import * as path from "node:path"
import { expect, layer } from "@effect/vitest"
import fc from "fast-check"
import { Effect, Layer, Runtime } from "effect"
import { EventStore } from "../../domain/ports/event-store.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { ensureGenesis } from "../../actors/genesis.ts"
import { auditLedger } from "../../actors/auditor.ts"
import { LedgerAccess, ledgerLayer } from "../../infra/ledger.ts"
import { keyIssued } from "../support/events.ts"
import { contributorSeed, makeBlock, testLedgerKey, testTrust } from "../support/ledger.ts"
import { signRegistration } from "../../domain/projections/contributors.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { filesBelow, tempDir } from "../support/tmp.ts"
import { logOf } from "../support/log.ts"

/** A ledger on disk with keys, blocks and their payload blobs. */
const buildLedger = (dir: string) =>
  Effect.gen(function* () {
    yield* (yield* LedgerAccess).openForWriting(true)
    yield* ensureGenesis
    const store = yield* EventStore
    const blobs = yield* BlobStore
    let parent = GENESIS_HASH
    yield* store.append("keys", [newEvent("ContributorRegistered", signRegistration(keyPairFromSeed(contributorSeed(1)).publicKey, testLedgerKey.seed))], "any")
    for (let i = 0; i < 6; i++) {
      const payload = new Uint8Array(64).map((_, j) => (i * 31 + j) & 0xff)
      yield* blobs.put(payload)
      const b = makeBlock(`layer${i % 2}.expert${i}`, payload, [parent])
      yield* store.append("chain-B", [newEvent("BlockAppended", b)], "any")
      yield* store.append("keys", [keyIssued(i)], "any")
      parent = b.hash
    }
  }).pipe(Effect.provide(ledgerLayer({ scheme: "file", dir })))

/** The event store's indexes (`events/*.idx`): derived from the segments, not part of the ledger. */
const isIndex = (file: string) => file.endsWith(".idx")

/** Everything the ledger answers through the event store: the whole log, and each stream's events. */
const readBack = (dir: string) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const log = yield* logOf(store)
    const streams = [...new Set(log.map((e) => e.stream))].sort()
    return { log, streams: yield* Effect.forEach(streams, (s) => store.read(s)) }
  }).pipe(Effect.provide(ledgerLayer({ scheme: "file", dir })))

/** Audit as `blyan audit` does: read-only, store-open failures are findings too. */
const audit = (dir: string) =>
  auditLedger(testTrust).pipe(
    Effect.provide(ledgerLayer({ scheme: "file", dir })),
    Effect.map((r) => r.replay.firstBad ?? r.badBlobs[0]),
    Effect.catchAll((e) => Effect.succeed({ reason: String((e as { message?: string }).message ?? e) }))
  )

const pristine = tempDir()

/**
 * A copy of the pristine ledger with one byte changed: byte `pos` of `files` (paths below it, of
 * `sizes` bytes) taken end to end, XORed with `xor`. Says which file and offset it changed.
 */
const copyFlipped = (files: ReadonlyArray<string>, sizes: ReadonlyArray<number>, pos: number, xor: number) => {
  const dir = tempDir()
  fs.cpSync(pristine, dir, { recursive: true })
  let i = 0
  while (pos >= sizes[i]!) pos -= sizes[i++]!
  const target = path.join(dir, files[i]!)
  const bytes = fs.readFileSync(target)
  bytes[pos] = bytes[pos]! ^ xor
  fs.writeFileSync(target, bytes)
  return { dir, file: files[i]!, offset: pos }
}

// The ledger is built once, before the tests, by the layer; the layer covers the whole file.
layer(Layer.effectDiscard(buildLedger(pristine)))("audit of a data directory", (it) => {
  it.effect("passes on an untouched ledger", () =>
    Effect.gen(function* () {
      expect(yield* audit(pristine)).toBeUndefined()
    })
  )

  it.effect("detects any single-byte change anywhere in the ledger's files: its event segments and blobs (property)", () =>
    Effect.gen(function* () {
      const files = filesBelow(pristine).filter((f) => !isIndex(f))
      expect(files.some((f) => f.includes("blobs"))).toBe(true)
      const sizes = files.map((f) => fs.statSync(path.join(pristine, f)).size)
      const total = sizes.reduce((a, b) => a + b, 0)
      // fast-check's async property takes a Promise: each case's audit runs on this test's runtime.
      const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: total - 1 }), fc.integer({ min: 1, max: 255 }), async (pos, xor) => {
            const { dir, file, offset } = copyFlipped(files, sizes, pos, xor)
            const finding = await runPromise(audit(dir))
            expect(finding, `flipping byte ${offset} of ${file} went unnoticed`).toBeDefined()
            fs.rmSync(dir, { recursive: true, force: true })
          }),
          { numRuns: 120 }
        )
      )
    })
  )

  it.effect("a changed byte in an index (derived data) is repaired from the log: the audit's verdict and every read stay the same (property)", () =>
    Effect.gen(function* () {
      const indexes = filesBelow(pristine).filter(isIndex)
      expect(indexes.length).toBeGreaterThan(0)
      const sizes = indexes.map((f) => fs.statSync(path.join(pristine, f)).size)
      const total = sizes.reduce((a, b) => a + b, 0)
      const want = yield* readBack(pristine)
      const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: total - 1 }), fc.integer({ min: 1, max: 255 }), async (pos, xor) => {
            const { dir } = copyFlipped(indexes, sizes, pos, xor)
            expect(await runPromise(audit(dir))).toBeUndefined()
            expect(await runPromise(readBack(dir))).toEqual(want)
            fs.rmSync(dir, { recursive: true, force: true })
          }),
          { numRuns: 60 }
        )
      )
    })
  )
})
