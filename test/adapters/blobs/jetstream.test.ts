import { Effect, Either } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeJetStreamBlobStore } from "../../../adapters/blobs/jetstream.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { blobStoreContract } from "../../contract/blob-store.ts"
import { deleteStreamAfter, testConnection, uniqueName } from "../../support/jetstream-fixtures.ts"

/** A fresh bucket on the NATS server at BLYAN_TEST_NATS_URL, deleted after; its client, for tampering. */
const freshBucket = Effect.gen(function* () {
  const conn = yield* testConnection()
  const bucket = uniqueName("t_blobs")
  // The object store keeps a bucket in the JetStream stream OBJ_<bucket>.
  yield* deleteStreamAfter(conn, `OBJ_${bucket}`)
  const store = yield* makeJetStreamBlobStore(conn, { bucket, replicas: 1 })
  const os = yield* Effect.promise(() => conn.js.views.os(bucket))
  return { conn, bucket, store, os }
})

/** Against the NATS server at BLYAN_TEST_NATS_URL. Tampering rewrites an object in the bucket behind the store's back. */
blobStoreContract("jetstream", () =>
  Effect.map(freshBucket, ({ store, os }) => ({
    store,
    tamper: (hash, alter) =>
      Effect.promise(async () => {
        const bytes = await os.getBlob(hash)
        await os.putBlob({ name: hash }, alter(bytes!))
      })
  }))
)

describe("jetstream blob store: the bucket's own records", () => {
  it.scoped("a chunk altered in the stream, the object's metadata left as it was, is BlobCorrupted; a put repairs it", () =>
    Effect.gen(function* () {
      const { conn, bucket, store, os } = yield* freshBucket
      const bytes = new TextEncoder().encode("expert weights, chunked")
      const hash = yield* store.put(bytes)
      const info = (yield* Effect.promise(() => os.info(hash)))!
      const chunks = `$O.${bucket}.C.${info.nuid}`
      yield* Effect.promise(async () => {
        await conn.jsm.streams.purge(`OBJ_${bucket}`, { filter: chunks })
        await conn.js.publish(chunks, new TextEncoder().encode("expert weights, CHUNKED"))
      })
      const r = yield* Effect.either(store.get(hash))
      expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "BlobCorrupted", hash, actual: sha256Hex("expert weights, CHUNKED") })
      expect((yield* Effect.flip(store.verify(hash)))._tag).toBe("BlobCorrupted")
      expect(yield* store.put(bytes)).toBe(hash)
      expect(Buffer.from(yield* store.get(hash)).equals(Buffer.from(bytes))).toBe(true)
      expect(yield* store.verify(hash)).toBe(bytes.length)
    })
  )

  it.scoped("a blob larger than one chunk round-trips and verifies", () =>
    Effect.gen(function* () {
      const { store } = yield* freshBucket
      const bytes = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)
      const hash = yield* store.put(bytes)
      expect(Buffer.from(yield* store.get(hash)).equals(Buffer.from(bytes))).toBe(true)
      expect(yield* store.verify(hash)).toBe(bytes.length)
    })
  )
})
