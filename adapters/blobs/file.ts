import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { sha256Hex, isHash } from "../../domain/ledger/hash.ts"
import { BlobCorrupted, BlobNotFound, BlobStore, BlobStoreFailure, type BlobStoreApi, checkBlobBytes } from "../../domain/ports/blob-store.ts"
import { causeText } from "../failure.ts"
import { replaceFileDurably } from "../durable-write.ts"
import { isAlive } from "../process.ts"

/**
 * Content-addressed blobs under `<dir>/blobs/<first 2 hex>/<sha256>`. A put writes a temporary
 * file, fsyncs it and renames it into place, so a blob is either whole under its name or absent;
 * every get re-hashes the bytes, so an altered file is reported, never served. Temporary files left
 * by writers that were killed mid-put are removed when the store is opened (see `removeLeftovers`).
 */
export const blobPath = (dir: string, hash: string) => path.join(dir, "blobs", hash.slice(0, 2), hash)

const failure = (what: string) => (e: unknown) => new BlobStoreFailure({ message: `blob store: ${what}: ${causeText(e)}` })

const readIfExists = (file: string): Buffer | undefined => {
  try {
    return fs.readFileSync(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

const writeDurably = (file: string, bytes: Uint8Array) =>
  replaceFileDurably(file, bytes, path.join(path.dirname(file), `${TMP_PREFIX}${process.pid}-${crypto.randomBytes(6).toString("hex")}`))

/** A put's temporary file is `.tmp-<pid>-<12 hex>`, beside the blob it becomes. */
const TMP_PREFIX = ".tmp-"
const TMP_NAME = /^\.tmp-(\d+)-[0-9a-f]+$/
/** How long a temporary file of a writer that is no longer running is left alone. */
export const DEAD_WRITER_GRACE_MS = 60_000
/** How long any temporary file is left alone, whoever wrote it: no put takes this long. */
export const ANY_WRITER_GRACE_MS = 24 * 3600_000

/**
 * Remove the temporary files of puts that will never finish: those whose writer (the pid in the
 * name) is not running on this host and that have not been written for a minute, and any not
 * written for a day (a recycled pid would otherwise keep one forever). The minute spares a writer
 * in another pid namespace or on another host sharing the directory, whose pid looks dead here.
 * Removing a file that a live writer still needed only makes that put fail (its rename finds
 * nothing) and never touches a blob: a blob's name is never `.tmp-*`, and a temporary file that
 * was renamed in the meantime is no longer under the name we unlink. Complete blobs, referenced or
 * not, are left alone. Best effort: what cannot be removed is reported and left.
 */
const removeLeftovers = (root: string, now: number): { removed: string[]; failed: string[] } => {
  const removed: string[] = []
  const failed: string[] = []
  const entries = (d: string) => {
    try {
      return fs.readdirSync(d)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") failed.push((e as Error).message)
      return []
    }
  }
  for (const shard of entries(root)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue
    for (const name of entries(path.join(root, shard))) {
      if (!name.startsWith(TMP_PREFIX)) continue
      const file = path.join(root, shard, name)
      try {
        const age = now - fs.statSync(file).mtimeMs
        const pid = TMP_NAME.exec(name)?.[1]
        const writerGone = pid !== undefined && !isAlive(Number(pid))
        if ((writerGone && age >= DEAD_WRITER_GRACE_MS) || age >= ANY_WRITER_GRACE_MS) {
          fs.unlinkSync(file)
          removed.push(file)
        }
      } catch (e) {
        // Gone already: its writer renamed it, or another opener removed it.
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") failed.push((e as Error).message)
      }
    }
  }
  return { removed, failed }
}

/** How much of a blob `verify` holds at a time. */
const VERIFY_CHUNK = 1 << 20

/** The sha256 and size of a file, read a chunk at a time; undefined when it does not exist. */
const hashFile = async (file: string): Promise<{ readonly sha256: string; readonly size: number } | undefined> => {
  let fh: fs.promises.FileHandle
  try {
    fh = await fs.promises.open(file, "r")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
  try {
    const h = crypto.createHash("sha256")
    const buf = Buffer.allocUnsafe(VERIFY_CHUNK)
    let size = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size)
      if (bytesRead === 0) break
      h.update(buf.subarray(0, bytesRead))
      size += bytesRead
    }
    return { sha256: h.digest("hex"), size }
  } finally {
    await fh.close()
  }
}

/** Every blob's hash under `root`, sorted; anything that is not a blob is ignored. */
const listBlobs = (root: string): string[] => {
  if (!fs.existsSync(root)) return []
  const out: string[] = []
  for (const shard of fs.readdirSync(root).sort()) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue
    for (const name of fs.readdirSync(path.join(root, shard)).sort()) if (isHash(name) && name.startsWith(shard)) out.push(name)
  }
  return out
}

export const makeFileBlobStore = (dir: string): Effect.Effect<BlobStoreApi> =>
  Effect.gen(function* () {
    const root = path.join(dir, "blobs")
    const { removed, failed } = removeLeftovers(root, Date.now())
    if (removed.length > 0) yield* Effect.logDebug(`removed ${removed.length} temporary file(s) left by interrupted puts: ${removed.join(", ")}`)
    if (failed.length > 0) yield* Effect.logWarning(`cannot clean up the blob store ${root}: ${failed.join("; ")}`)
    const api: BlobStoreApi = {
      put: (bytes) =>
        Effect.suspend(() => {
          const hash = sha256Hex(bytes)
          const file = blobPath(dir, hash)
          return Effect.try({
            try: () => {
              // Idempotent, and self-healing: a present but altered copy is replaced.
              const existing = readIfExists(file)
              if (existing === undefined || sha256Hex(existing) !== hash) writeDurably(file, bytes)
              return hash
            },
            catch: failure(`cannot store blob ${hash} at ${file}`)
          })
        }),
      get: (hash) =>
        Effect.gen(function* () {
          // Anything but a sha256 cannot name a blob (and must never reach the path).
          if (!isHash(hash)) return yield* BlobNotFound.of({ hash })
          const file = blobPath(dir, hash)
          const bytes = yield* Effect.try({ try: () => readIfExists(file), catch: failure(`cannot read blob ${hash} at ${file}`) })
          if (bytes === undefined) return yield* BlobNotFound.of({ hash })
          return yield* checkBlobBytes(hash, bytes)
        }),
      verify: (hash) =>
        Effect.gen(function* () {
          if (!isHash(hash)) return yield* BlobNotFound.of({ hash })
          const file = blobPath(dir, hash)
          const got = yield* Effect.tryPromise({ try: () => hashFile(file), catch: failure(`cannot read blob ${hash} at ${file}`) })
          if (got === undefined) return yield* BlobNotFound.of({ hash })
          if (got.sha256 !== hash) return yield* BlobCorrupted.of({ hash, actual: got.sha256 })
          return got.size
        }),
      has: (hash) =>
        isHash(hash)
          ? Effect.try({ try: () => fs.existsSync(blobPath(dir, hash)), catch: failure(`cannot look up blob ${hash} at ${blobPath(dir, hash)}`) })
          : Effect.succeed(false),
      list: Effect.try({ try: () => listBlobs(root), catch: failure(`cannot list blobs in ${root}`) }),
      prune: (keep, graceMs) =>
        Effect.try({
          try: () => {
            const now = Date.now()
            const removed: string[] = []
            for (const hash of listBlobs(root)) {
              const file = blobPath(dir, hash)
              if (keep.has(hash) || now - fs.statSync(file).mtimeMs < graceMs) continue
              fs.rmSync(file, { force: true })
              removed.push(hash)
            }
            return removed
          },
          catch: failure(`cannot prune blobs in ${root}`)
        })
    }
    return api
  })

export const FileBlobStoreLive = (dir: string) => Layer.effect(BlobStore, makeFileBlobStore(dir))
