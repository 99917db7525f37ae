import * as crypto from "node:crypto"
import { StorageType, type ObjectStore } from "nats"
import { Effect } from "effect"
import { isHash, sha256Hex } from "../../domain/ledger/hash.ts"
import { BlobCorrupted, BlobNotFound, BlobStoreFailure, type BlobStoreApi, checkBlobBytes } from "../../domain/ports/blob-store.ts"
import type { JetStreamConnection } from "../eventstore/jetstream-connection.ts"
import { causeText } from "../failure.ts"

/**
 * Content-addressed blobs in a JetStream Object Store bucket (chunked, replicated with the
 * bucket), each stored under its sha256 as its name. Every read re-hashes the bytes, so an
 * object altered in the bucket is reported, never served; a put of bytes already stored intact
 * writes nothing, and a put over an altered copy replaces it.
 */
export type JetStreamBlobStoreOptions = { readonly bucket: string; readonly replicas: number }

/** How long a read waits for the next chunk of an object before giving up. */
const CHUNK_WAIT_MS = 15_000

/** The object store client raises this when the chunks do not hash to the digest in the object's metadata. */
const DIGEST_MISMATCH = "received a corrupt object"

/**
 * Feed the bytes stored under `name` to `onChunk`, in order, holding one chunk at a time; false
 * when there is no such object. The client's own digest check is left to our caller, who hashes
 * what was read against the name.
 */
const readObject = async (os: ObjectStore, name: string, onChunk: (chunk: Uint8Array) => void): Promise<boolean> => {
  const r = await os.get(name)
  if (r === null) return false
  const reader = r.data.getReader()
  for (;;) {
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no data for ${CHUNK_WAIT_MS} ms`)), CHUNK_WAIT_MS)
    })
    try {
      const next = await Promise.race([reader.read(), stalled])
      if (next.done) return true
      onChunk(next.value)
    } catch (e) {
      if (causeText(e).startsWith(DIGEST_MISMATCH)) return true
      await reader.cancel().catch(() => undefined)
      throw e
    } finally {
      clearTimeout(timer)
    }
  }
}

export const makeJetStreamBlobStore = (conn: JetStreamConnection, options: JetStreamBlobStoreOptions): Effect.Effect<BlobStoreApi, BlobStoreFailure> =>
  Effect.gen(function* () {
    const { bucket } = options
    const failure = (what: string) => (e: unknown) => new BlobStoreFailure({ message: `blob store: ${what} in JetStream bucket ${bucket}: ${causeText(e)}` })
    const nats = <A>(what: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: failure(what) })

    const os = yield* nats("cannot open the bucket", () => conn.js.views.os(bucket, { storage: StorageType.File, replicas: options.replicas }))
    const status = yield* nats("cannot read the status of the bucket", () => os.status())
    if (status.replicas !== options.replicas)
      yield* Effect.logWarning(`JetStream bucket ${bucket} has ${status.replicas} replica(s), not the ${options.replicas} asked for`)

    /** The sha256 and size of what is stored under `hash`; undefined when nothing is. */
    const digest = (hash: string) =>
      nats(`cannot read blob ${hash}`, async () => {
        const h = crypto.createHash("sha256")
        let size = 0
        const found = await readObject(os, hash, (chunk) => {
          h.update(chunk)
          size += chunk.length
        })
        return found ? { sha256: h.digest("hex"), size } : undefined
      })

    const api: BlobStoreApi = {
      put: (bytes) =>
        Effect.gen(function* () {
          const hash = sha256Hex(bytes)
          // Idempotent, and self-healing: a present but altered copy is replaced.
          const stored = yield* digest(hash)
          if (stored?.sha256 !== hash) yield* nats(`cannot store blob ${hash}`, () => os.putBlob({ name: hash }, bytes))
          return hash
        }),
      get: (hash) =>
        Effect.gen(function* () {
          if (!isHash(hash)) return yield* BlobNotFound.of({ hash })
          const chunks: Uint8Array[] = []
          const found = yield* nats(`cannot read blob ${hash}`, () => readObject(os, hash, (chunk) => void chunks.push(chunk)))
          if (!found) return yield* BlobNotFound.of({ hash })
          return yield* checkBlobBytes(hash, Buffer.concat(chunks))
        }),
      verify: (hash) =>
        Effect.gen(function* () {
          if (!isHash(hash)) return yield* BlobNotFound.of({ hash })
          const got = yield* digest(hash)
          if (got === undefined) return yield* BlobNotFound.of({ hash })
          if (got.sha256 !== hash) return yield* BlobCorrupted.of({ hash, actual: got.sha256 })
          return got.size
        }),
      has: (hash) =>
        isHash(hash)
          ? Effect.map(
              nats(`cannot look up blob ${hash}`, () => os.info(hash)),
              (info) => info !== null && !info.deleted
            )
          : Effect.succeed(false),
      list: Effect.map(nats("cannot list blobs", () => os.list()), (infos) => infos.map((i) => i.name).filter(isHash).sort()),
      prune: (keep, graceMs) =>
        nats("cannot prune blobs", async () => {
          const now = Date.now()
          const removed: string[] = []
          for (const info of await os.list()) {
            if (!isHash(info.name) || keep.has(info.name) || now - Date.parse(info.mtime) < graceMs) continue
            await os.delete(info.name)
            removed.push(info.name)
          }
          return removed.sort()
        })
    }
    return api
  })
