import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { blobPath, makeFileBlobStore } from "../../../adapters/blobs/file.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { blobStoreContract } from "../../contract/blob-store.ts"
import { filesBelow, tempDir } from "../../support/tmp.ts"

const freshDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "blyan-blobs-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

blobStoreContract("file", () =>
  Effect.gen(function* () {
    const dir = yield* freshDir
    const store = yield* makeFileBlobStore(dir)
    return {
      store,
      tamper: (hash, alter) => Effect.sync(() => fs.writeFileSync(blobPath(dir, hash), alter(fs.readFileSync(blobPath(dir, hash)))))
    }
  })
)

describe("file blob store: layout", () => {
  it.effect("stores each blob at blobs/<first two hex>/<sha256>, leaves no temporary files, and survives a reopen", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-blobs-")
      const hash = yield* Effect.flatMap(makeFileBlobStore(dir), (s) => s.put(new TextEncoder().encode("expert weights")))
      expect(filesBelow(dir)).toEqual([path.join("blobs", hash.slice(0, 2), hash)])
      const again = yield* Effect.flatMap(makeFileBlobStore(dir), (s) => Effect.zip(s.get(hash), s.list))
      expect(new TextDecoder().decode(again[0])).toBe("expert weights")
      expect(again[1]).toEqual([hash])
    })
  )

  it.effect("list ignores stray files that are not blobs at their address", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-blobs-")
      const store = yield* makeFileBlobStore(dir)
      const hash = yield* store.put(new Uint8Array([1, 2, 3]))
      const other = "ab" + hash.slice(2)
      fs.mkdirSync(path.join(dir, "blobs", "cd"), { recursive: true })
      fs.writeFileSync(path.join(dir, "blobs", "cd", other), "misplaced")
      fs.writeFileSync(path.join(dir, "blobs", hash.slice(0, 2), ".tmp-1-abc"), "left by a crash")
      expect(yield* store.list).toEqual([hash])
    })
  )
})

describe("file blob store: failures name what failed", () => {
  it.effect("a store whose blobs directory is unusable fails put, get and list with a message naming the path", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-blobs-")
      // A file where the directory should be: unusable for root too, unlike permission bits.
      const root = path.join(dir, "blobs")
      fs.writeFileSync(root, "not a directory")
      const store = yield* makeFileBlobStore(dir)
      const bytes = new TextEncoder().encode("expert weights")
      const hash = "a".repeat(64)
      const failures = yield* Effect.all([Effect.flip(store.put(bytes)), Effect.flip(store.get(hash)), Effect.flip(store.list)])
      for (const e of failures) {
        expect(e._tag).toBe("BlobStoreFailure")
        expect(e.message).toMatch(/^blob store: cannot \w+/)
        expect(e.message).toContain(root)
      }
      const [put, get] = failures
      expect(put.message).toContain(blobPath(dir, sha256Hex(bytes)))
      expect(get.message).toContain(blobPath(dir, hash))
    })
  )
})
