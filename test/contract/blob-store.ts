import { Effect, Either, type Scope } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "@effect/vitest"
import type { BlobStoreApi } from "../../domain/ports/blob-store.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { scopedPropertyRunner } from "../support/property.ts"

/**
 * What a blob store adapter hands the contract: the store, and a way to alter the bytes stored
 * under an address behind its back (as a disk fault or an attacker would).
 */
export type BlobStoreHarness = {
  readonly store: BlobStoreApi
  readonly tamper: (hash: string, alter: (bytes: Uint8Array) => Uint8Array) => Effect.Effect<void>
}
export type BlobStoreFactory = () => Effect.Effect<BlobStoreHarness, unknown, Scope.Scope>

const bytesArb = fc.uint8Array({ minLength: 0, maxLength: 4096 })

/** The blob store port's contract: every adapter runs exactly these tests. */
export const blobStoreContract = (name: string, factory: BlobStoreFactory) =>
  describe(`BlobStore contract: ${name}`, () => {
    it.effect("put returns the sha256 address, get returns the same bytes, has and list see it (property)", () =>
      Effect.gen(function* () {
        const run = yield* scopedPropertyRunner
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(bytesArb, { minLength: 1, maxLength: 5 }), (blobs) =>
              run(
                Effect.gen(function* () {
                  const { store } = yield* factory()
                  const hashes = []
                  for (const b of blobs) {
                    const h = yield* store.put(b)
                    expect(h).toBe(sha256Hex(b))
                    hashes.push(h)
                  }
                  for (let i = 0; i < blobs.length; i++) {
                    expect(Buffer.from(yield* store.get(hashes[i]!)).equals(Buffer.from(blobs[i]!))).toBe(true)
                    expect(yield* store.has(hashes[i]!)).toBe(true)
                  }
                  expect(yield* store.list).toEqual([...new Set(hashes)].sort())
                })
              )
            ),
            { numRuns: 30 }
          )
        )
      })
    )

    it.scoped("put is idempotent", () =>
      Effect.gen(function* () {
        const { store } = yield* factory()
        const b = new TextEncoder().encode("same bytes")
        const h1 = yield* store.put(b)
        const h2 = yield* store.put(b)
        expect(h2).toBe(h1)
        expect(yield* store.list).toEqual([h1])
      })
    )

    it.scoped("a missing blob, or an address that is not a sha256, is BlobNotFound", () =>
      Effect.gen(function* () {
        const { store } = yield* factory()
        for (const h of [sha256Hex("never stored"), "../../etc/passwd", "ABC", ""]) {
          const r = yield* Effect.either(store.get(h))
          expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "BlobNotFound", hash: h })
          expect(yield* store.has(h)).toBe(false)
        }
        expect(yield* store.list).toEqual([])
      })
    )

    it.effect("any single changed byte of a stored blob is reported as BlobCorrupted on get (property)", () =>
      Effect.gen(function* () {
        const run = yield* scopedPropertyRunner
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc.uint8Array({ minLength: 1, maxLength: 2048 }),
              fc.nat(),
              fc.integer({ min: 1, max: 255 }),
              (bytes, at, xor) =>
                run(
                  Effect.gen(function* () {
                    const { store, tamper } = yield* factory()
                    const h = yield* store.put(bytes)
                    const pos = at % bytes.length
                    yield* tamper(h, (b) => {
                      const c = Uint8Array.from(b)
                      c[pos]! ^= xor
                      return c
                    })
                    const r = yield* Effect.either(store.get(h))
                    expect(Either.isLeft(r) && r.left._tag).toBe("BlobCorrupted")
                    if (Either.isLeft(r) && r.left._tag === "BlobCorrupted") expect(r.left.actual).not.toBe(h)
                    // Putting the true bytes again repairs it.
                    expect(yield* store.put(bytes)).toBe(h)
                    expect(Buffer.from(yield* store.get(h)).equals(Buffer.from(bytes))).toBe(true)
                  })
                )
            ),
            { numRuns: 100 }
          )
        )
      })
    )

    it.scoped("a truncated or emptied blob is reported as BlobCorrupted", () =>
      Effect.gen(function* () {
        const { store, tamper } = yield* factory()
        const h = yield* store.put(new TextEncoder().encode("weights"))
        yield* tamper(h, (b) => b.subarray(0, 3))
        expect((yield* Effect.flip(store.get(h)))._tag).toBe("BlobCorrupted")
        yield* tamper(h, () => new Uint8Array(0))
        expect((yield* Effect.flip(store.get(h)))._tag).toBe("BlobCorrupted")
      })
    )

    it.scoped("prune removes only blobs outside the kept set and past the grace period", () =>
      Effect.gen(function* () {
        const { store } = yield* factory()
        const [kept, orphan] = yield* Effect.all([store.put(new Uint8Array([1])), store.put(new Uint8Array([2]))])
        // Just written: within a day's grace nothing goes, not even the orphan.
        expect(yield* store.prune(new Set([kept]), 86_400_000)).toEqual([])
        expect(yield* store.prune(new Set([kept]), 0)).toEqual([orphan])
        expect(yield* store.list).toEqual([kept])
        expect(yield* store.has(orphan)).toBe(false)
      })
    )
  })
