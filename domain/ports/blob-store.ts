import { Context, Data, type Effect } from "effect"

export class BlobNotFound extends Data.TaggedError("BlobNotFound")<{ readonly hash: string }> {
  override get message() {
    return `blob ${this.hash} not found`
  }
}

/** The stored bytes no longer hash to their address: the blob was altered. */
export class BlobCorrupted extends Data.TaggedError("BlobCorrupted")<{ readonly hash: string; readonly actual: string }> {
  override get message() {
    return `blob ${this.hash} is corrupted (its bytes hash to ${this.actual})`
  }
}

/** The blob store cannot be used (I/O, permissions); the reason names the path or hash where known. */
export class BlobStoreFailure extends Data.TaggedError("BlobStoreFailure")<{ readonly reason: string }> {
  override get message() {
    return `blob store: ${this.reason}`
  }
}

/** Content-addressed bytes: the address is the sha256 of the content, verified on every read. */
export interface BlobStoreApi {
  readonly put: (bytes: Uint8Array) => Effect.Effect<string, BlobStoreFailure>
  readonly get: (hash: string) => Effect.Effect<Uint8Array, BlobNotFound | BlobCorrupted | BlobStoreFailure>
  readonly has: (hash: string) => Effect.Effect<boolean, BlobStoreFailure>
  readonly list: Effect.Effect<ReadonlyArray<string>, BlobStoreFailure>
}

export class BlobStore extends Context.Tag("blyan/BlobStore")<BlobStore, BlobStoreApi>() {}
