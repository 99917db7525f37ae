import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { sha256Hex, isHash } from "../../domain/ledger/hash.ts"
import { BlobCorrupted, BlobNotFound, BlobStore, BlobStoreFailure, type BlobStoreApi } from "../../domain/ports/blob-store.ts"

/**
 * Content-addressed blobs under `<dir>/blobs/<first 2 hex>/<sha256>`. A put writes a temporary
 * file, fsyncs it and renames it into place, so a blob is either whole under its name or absent;
 * every get re-hashes the bytes, so an altered file is reported, never served.
 */
export const blobPath = (dir: string, hash: string) => path.join(dir, "blobs", hash.slice(0, 2), hash)

const failure = (what: string) => (e: unknown) => new BlobStoreFailure({ reason: `${what}: ${(e as Error).message ?? String(e)}` })

const readIfExists = (file: string): Buffer | undefined => {
  try {
    return fs.readFileSync(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

const syncPath = (p: string, flags: string) => {
  const fd = fs.openSync(p, flags)
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const writeDurably = (file: string, bytes: Uint8Array) => {
  const dirOf = path.dirname(file)
  fs.mkdirSync(dirOf, { recursive: true })
  const tmp = path.join(dirOf, `.tmp-${process.pid}-${crypto.randomBytes(6).toString("hex")}`)
  try {
    const fd = fs.openSync(tmp, "wx", 0o644)
    try {
      fs.writeFileSync(fd, bytes)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
  // The rename itself must survive a crash, so sync the directory that holds the new name.
  syncPath(dirOf, "r")
}

export const makeFileBlobStore = (dir: string): Effect.Effect<BlobStoreApi> =>
  Effect.sync(() => {
    const root = path.join(dir, "blobs")
    const api: BlobStoreApi = {
      put: (bytes) =>
        Effect.try({
          try: () => {
            const hash = sha256Hex(bytes)
            const file = blobPath(dir, hash)
            // Idempotent, and self-healing: a present but altered copy is replaced.
            const existing = readIfExists(file)
            if (existing === undefined || sha256Hex(existing) !== hash) writeDurably(file, bytes)
            return hash
          },
          catch: failure("cannot store blob")
        }),
      get: (hash) =>
        Effect.gen(function* () {
          // Anything but a sha256 cannot name a blob (and must never reach the path).
          if (!isHash(hash)) return yield* new BlobNotFound({ hash })
          const bytes = yield* Effect.try({ try: () => readIfExists(blobPath(dir, hash)), catch: failure(`cannot read blob ${hash}`) })
          if (bytes === undefined) return yield* new BlobNotFound({ hash })
          const actual = sha256Hex(bytes)
          if (actual !== hash) return yield* new BlobCorrupted({ hash, actual })
          return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
        }),
      has: (hash) =>
        isHash(hash)
          ? Effect.try({ try: () => fs.existsSync(blobPath(dir, hash)), catch: failure(`cannot look up blob ${hash}`) })
          : Effect.succeed(false),
      list: Effect.try({
        try: () => {
          if (!fs.existsSync(root)) return []
          const out: string[] = []
          for (const shard of fs.readdirSync(root).sort()) {
            if (!/^[0-9a-f]{2}$/.test(shard)) continue
            for (const name of fs.readdirSync(path.join(root, shard)).sort())
              if (isHash(name) && name.startsWith(shard)) out.push(name)
          }
          return out
        },
        catch: failure(`cannot list blobs in ${root}`)
      })
    }
    return api
  })

export const FileBlobStoreLive = (dir: string) => Layer.effect(BlobStore, makeFileBlobStore(dir))
