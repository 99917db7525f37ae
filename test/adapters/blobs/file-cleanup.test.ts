import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { ANY_WRITER_GRACE_MS, DEAD_WRITER_GRACE_MS, makeFileBlobStore } from "../../../adapters/blobs/file.ts"
import { filesBelow, tempDir } from "../../support/tmp.ts"

/** The pid of a process that has already exited, hence dead. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!

/** A temporary file as a put leaves it when killed before its rename, last written `ageMs` ago. */
const leftover = (dir: string, shard: string, name: string, ageMs: number) => {
  const file = path.join(dir, "blobs", shard, name)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, "half a blob")
  const when = new Date(Date.now() - ageMs)
  fs.utimesSync(file, when, when)
  return path.join("blobs", shard, name)
}

describe("file blob store: temporary files left by interrupted puts", () => {
  // Live: the store ages the leftovers by their mtimes against the wall clock.
  it.live("removes, on open, those of writers that are gone, and keeps blobs and live writers' files", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-blobs-")
      const hash = yield* Effect.flatMap(makeFileBlobStore(dir), (s) => s.put(new TextEncoder().encode("expert weights")))
      const blob = path.join("blobs", hash.slice(0, 2), hash)
      const dead = deadPid()
      const minutes = (n: number) => n * 60_000
      const gone = [
        leftover(dir, hash.slice(0, 2), `.tmp-${dead}-0a1b2c3d4e5f`, DEAD_WRITER_GRACE_MS + minutes(5)),
        leftover(dir, "ff", `.tmp-${dead}-abcdef012345`, DEAD_WRITER_GRACE_MS + minutes(5)),
        // A live pid this old is a recycled one: no put takes a day.
        leftover(dir, "ff", `.tmp-${process.pid}-000000000000`, ANY_WRITER_GRACE_MS + minutes(5)),
        leftover(dir, "00", ".tmp-not-ours", ANY_WRITER_GRACE_MS + minutes(5))
      ]
      const kept = [
        // A put in progress in a live process.
        leftover(dir, "ff", `.tmp-${process.pid}-111111111111`, DEAD_WRITER_GRACE_MS + minutes(5)),
        // Just written: its writer may live in another pid namespace or host, where its pid means nothing here.
        leftover(dir, "ff", `.tmp-${dead}-222222222222`, 0),
        leftover(dir, "00", ".tmp-unknown-writer", minutes(5))
      ]
      expect(filesBelow(dir)).toEqual([blob, ...gone, ...kept].sort())

      const [bytes, list] = yield* Effect.flatMap(makeFileBlobStore(dir), (s) => Effect.zip(s.get(hash), s.list))
      expect(filesBelow(dir)).toEqual([blob, ...kept].sort())
      expect(new TextDecoder().decode(bytes)).toBe("expert weights")
      expect(list).toEqual([hash])
    })
  )

  it.effect("opens a store that has no blobs directory yet, and one whose blobs directory cannot be read", () =>
    Effect.gen(function* () {
      const empty = tempDir("blyan-blobs-")
      expect(yield* Effect.flatMap(makeFileBlobStore(empty), (s) => s.list)).toEqual([])
      const broken = tempDir("blyan-blobs-")
      fs.writeFileSync(path.join(broken, "blobs"), "not a directory")
      // Opening still succeeds; the store's operations report the problem themselves.
      const store = yield* makeFileBlobStore(broken)
      expect((yield* Effect.flip(store.list))._tag).toBe("BlobStoreFailure")
    })
  )
})
