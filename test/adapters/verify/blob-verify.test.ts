import * as fs from "node:fs"
import { Effect, Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "@effect/vitest"
import { blobPath, makeFileBlobStore } from "../../../adapters/blobs/file.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { tempDir } from "../../support/tmp.ts"

/** Bytes of a blob: small ones, and ones over the 1 MiB that `verify` reads at a time. */
const blobBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.tuple(fc.integer({ min: (1 << 20) - 1, max: (3 << 20) + 7 }), fc.nat({ max: 255 })).map(([n, seed]) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff))
)

describe("blob verification, streaming (file blob store)", () => {
  it.live("verify gives a stored blob's size, and for any single changed byte the hash the bytes now have (property)", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-blob-verify-")
      const store = yield* makeFileBlobStore(dir)
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(blobBytes, fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, flip) =>
            Effect.runPromise(
              Effect.gen(function* () {
                const hash = yield* store.put(bytes)
                expect(yield* store.verify(hash)).toBe(bytes.length)
                if (bytes.length === 0) return
                const altered = bytes.slice()
                altered[at % bytes.length]! ^= flip
                fs.writeFileSync(blobPath(dir, hash), altered)
                const r = yield* Effect.either(store.verify(hash))
                expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "BlobCorrupted", hash, actual: sha256Hex(altered) })
                fs.rmSync(blobPath(dir, hash))
              })
            )
          ),
          { numRuns: 25 }
        )
      )
    })
  )

  it.effect("a missing blob, or an address that is not a sha256, is BlobNotFound", () =>
    Effect.gen(function* () {
      const store = yield* makeFileBlobStore(tempDir("blyan-blob-verify-"))
      for (const h of [sha256Hex("never stored"), "../../etc/passwd", "ABC", ""]) {
        const r = yield* Effect.either(store.verify(h))
        expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "BlobNotFound", hash: h })
      }
    })
  )
})
