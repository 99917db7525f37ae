import { Context, Either, Schema, type Effect } from "effect"
import { sha256Hex } from "../ledger/hash.ts"

export class BlobNotFound extends Schema.TaggedError<BlobNotFound>()("BlobNotFound", { hash: Schema.String, message: Schema.String }) {
  static of({ hash }: { readonly hash: string }): BlobNotFound {
    return new BlobNotFound({ hash, message: `blob ${hash} not found` })
  }
}

/** The stored bytes no longer hash to their address: the blob was altered. */
export class BlobCorrupted extends Schema.TaggedError<BlobCorrupted>()("BlobCorrupted", {
  hash: Schema.String,
  actual: Schema.String,
  message: Schema.String
}) {
  static of({ hash, actual }: { readonly hash: string; readonly actual: string }): BlobCorrupted {
    return new BlobCorrupted({ hash, actual, message: `blob ${hash} is corrupted (its bytes hash to ${actual})` })
  }
}

/** Bytes read for `hash`, as a plain Uint8Array view, if they still hash to it: every read re-hashes. */
export const checkBlobBytes = (hash: string, bytes: Uint8Array): Either.Either<Uint8Array, BlobCorrupted> => {
  const actual = sha256Hex(bytes)
  return actual === hash ? Either.right(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) : Either.left(BlobCorrupted.of({ hash, actual }))
}

/** The blob store cannot be used (I/O, permissions); the message names the path or hash where known. */
export class BlobStoreFailure extends Schema.TaggedError<BlobStoreFailure>()("BlobStoreFailure", { message: Schema.String }) {}

/** Content-addressed bytes: the address is the sha256 of the content, verified on every read. */
export interface BlobStoreApi {
  readonly put: (bytes: Uint8Array) => Effect.Effect<string, BlobStoreFailure>
  readonly get: (hash: string) => Effect.Effect<Uint8Array, BlobNotFound | BlobCorrupted | BlobStoreFailure>
  /**
   * Re-hash the bytes stored under `hash` without holding them whole, as `get` would check them:
   * their size in bytes when they still hash to their address. An audit verifies every blob this
   * way, whatever their sizes.
   */
  readonly verify: (hash: string) => Effect.Effect<number, BlobNotFound | BlobCorrupted | BlobStoreFailure>
  readonly has: (hash: string) => Effect.Effect<boolean, BlobStoreFailure>
  readonly list: Effect.Effect<ReadonlyArray<string>, BlobStoreFailure>
  /**
   * Remove the blobs not in `keep` that nobody has written for `graceMs` (a writer between its put
   * and its append keeps what it just stored); the hashes removed.
   */
  readonly prune: (keep: ReadonlySet<string>, graceMs: number) => Effect.Effect<ReadonlyArray<string>, BlobStoreFailure>
}

export class BlobStore extends Context.Tag("blyan/BlobStore")<BlobStore, BlobStoreApi>() {}
