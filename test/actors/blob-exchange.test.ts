import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { fetchBlob, serveBlobs } from "../../actors/blob-exchange.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { Bus, type BusApi } from "../../domain/ports/bus.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { decodeBlobChunk, decodeBlobRead, encodeBlobChunk } from "../../domain/network/blob-wire.ts"
import { Subjects } from "../../domain/network/subjects.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-blob-exchange-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0

/** A blob store with the test's blobs, served on a memory bus with small messages (many chunks per blob). */
const served = Effect.gen(function* () {
  const blobs = yield* makeFileBlobStore(fs.mkdtempSync(path.join(root, `${n++}-`)))
  const bus = yield* makeMemoryBus({ maxPayload: 1024 })
  yield* serveBlobs.pipe(Effect.provideService(Bus, bus), Effect.provideService(BlobStore, blobs))
  return { blobs, bus }
})

const fetching = (bus: BusApi, hash: string) => Effect.either(fetchBlob(hash, { timeoutMs: 3000 }).pipe(Effect.provideService(Bus, bus)))

describe("blobs over the bus", () => {
  it.scopedLive("a blob of any size comes back whole, chunk by chunk, and verified (property)", () =>
    Effect.gen(function* () {
      const { blobs, bus } = yield* served
      const samples = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 5000 }), fc.constantFrom(new Uint8Array(896), new Uint8Array(896 * 3))), 40)
      for (const bytes of samples) {
        const hash = yield* blobs.put(bytes)
        const r = yield* fetching(bus, hash)
        expect(Either.isRight(r) && Buffer.from(r.right).equals(Buffer.from(bytes))).toBe(true)
      }
    })
  )

  it.scopedLive("an unknown blob, altered bytes or a size that moves is refused, naming the hash", () =>
    Effect.gen(function* () {
      const { bus } = yield* served
      const missing = sha256Hex("nothing")
      const r = yield* fetching(bus, missing)
      expect(Either.isLeft(r) && r.left.message).toBe(`cannot fetch blob ${missing}: the blob server refused: blob ${missing} not found`)
      // Servers of the test's own: one that alters a byte, one whose blob grows between chunks.
      const original = new Uint8Array(3000).fill(7)
      const hash = sha256Hex(original)
      const liar = yield* makeMemoryBus({ maxPayload: 1024 })
      yield* liar.serve(Subjects.blobRead, (req) =>
        Effect.sync(() => {
          const { offset } = Either.getOrThrow(decodeBlobRead(req.data))
          const bytes = original.slice()
          bytes[2500] = 8
          return encodeBlobChunk(bytes.length, bytes.subarray(offset, offset + 500))
        })
      )
      const altered = yield* fetching(liar, hash)
      expect(Either.isLeft(altered) && altered.left.message).toContain(`the bytes that came hash to ${sha256Hex(Uint8Array.from(original, (b, i) => (i === 2500 ? 8 : b)))}`)
      const growing = yield* makeMemoryBus({ maxPayload: 1024 })
      yield* growing.serve(Subjects.blobRead, (req) =>
        Effect.sync(() => {
          const { offset } = Either.getOrThrow(decodeBlobRead(req.data))
          return encodeBlobChunk(3000 + offset, original.subarray(offset, offset + 500))
        })
      )
      const moved = yield* fetching(growing, hash)
      expect(Either.isLeft(moved) && moved.left.message).toContain("its size changed from 3000 to 3500 bytes")
    })
  )

  it.scopedLive("a malformed read or an offset past the end is answered with the reason", () =>
    Effect.gen(function* () {
      const { blobs, bus } = yield* served
      const hash = yield* blobs.put(new Uint8Array(10))
      const ask = (body: string) => Effect.map(bus.request(Subjects.blobRead, new TextEncoder().encode(body), { timeoutMs: 3000 }), decodeBlobChunk)
      const malformed = yield* ask('{"hash":"x","offset":0}')
      expect(Either.isLeft(malformed) && malformed.left.message).toContain("the blob server refused: a blob read must be")
      const past = yield* ask(JSON.stringify({ hash, offset: 11 }))
      expect(Either.isLeft(past) && past.left.message).toContain(`offset 11 is past the end of blob ${hash} (10 bytes)`)
    })
  )
})
