import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Option } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeFileSnapshotStore, snapshotsDir, STALE_TMP_MS } from "../../../adapters/snapshots/file.ts"
import type { Snapshot } from "../../../domain/ports/snapshot-store.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { snapshotStoreContract } from "../../contract/snapshot-store.ts"
import { tempDir } from "../../support/tmp.ts"

const freshDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "blyan-snapshots-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

snapshotStoreContract("file", () => Effect.map(freshDir, makeFileSnapshotStore))

const snapshot = (projection: string, seq = 5): Snapshot => ({ projection, version: 1, seq, hash: sha256Hex(`${projection}-${seq}`), streams: { "chain-A": 1 }, state: { seq } })

describe("file snapshot store", () => {
  it.effect("creates nothing until the first save, then one file per projection and no temporary file", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-snapshots-")
      const store = makeFileSnapshotStore(dir)
      expect(Option.isNone(yield* store.load("model"))).toBe(true)
      expect(yield* store.list).toEqual({ snapshots: [], unreadable: [] })
      expect(fs.existsSync(snapshotsDir(dir))).toBe(false)
      yield* store.save(snapshot("model"))
      yield* store.save(snapshot("model", 9))
      yield* store.save(snapshot("chain"))
      expect(fs.readdirSync(snapshotsDir(dir)).sort()).toEqual(["chain.json", "model.json"])
      // A reopened store reads what the first one wrote.
      expect(Option.getOrThrow(yield* makeFileSnapshotStore(dir).load("model")).seq).toBe(9)
    })
  )

  it.effect("a damaged, foreign or unreadable file is reported as unreadable, never returned as a snapshot", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-snapshots-")
      const store = makeFileSnapshotStore(dir)
      yield* store.save(snapshot("model"))
      yield* store.save(snapshot("chain"))
      yield* store.save(snapshot("plans"))
      const file = (p: string) => path.join(snapshotsDir(dir), `${p}.json`)
      fs.writeFileSync(file("model"), fs.readFileSync(file("model"), "utf8").slice(0, 20))
      // A whole, valid snapshot, but of another projection: a file copied or renamed by hand.
      fs.copyFileSync(file("plans"), file("chain"))
      fs.writeFileSync(file("nodes"), JSON.stringify({ ...snapshot("nodes"), seq: "five" }))
      for (const p of ["model", "chain", "nodes"]) {
        const r = yield* Effect.either(store.load(p))
        expect(Either.isLeft(r) && r.left._tag).toBe("SnapshotUnreadable")
      }
      const listing = yield* store.list
      expect(listing.snapshots.map((s) => s.projection)).toEqual(["plans"])
      expect(listing.unreadable.map((u) => u.projection)).toEqual(["chain", "model", "nodes"])
      expect(listing.unreadable[1]!.message).toMatch(/snapshot model is unreadable: not JSON/)
    })
  )

  it.effect("a save removes temporary files that crashed saves left an hour ago or more, and leaves younger ones", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-snapshots-")
      const root = snapshotsDir(dir)
      fs.mkdirSync(root, { recursive: true })
      const old = path.join(root, ".model.json.tmp-999999-0123456789ab")
      const young = path.join(root, ".model.json.tmp-999998-0123456789ab")
      fs.writeFileSync(old, "{")
      fs.writeFileSync(young, "{")
      const past = (Date.now() - STALE_TMP_MS - 1000) / 1000
      fs.utimesSync(old, past, past)
      const store = makeFileSnapshotStore(dir)
      expect((yield* store.list).snapshots).toEqual([])
      yield* store.save(snapshot("model"))
      expect(fs.existsSync(old)).toBe(false)
      expect(fs.existsSync(young)).toBe(true)
      expect(Option.getOrThrow(yield* store.load("model"))).toEqual(snapshot("model"))
    })
  )

  it.effect("a save that cannot land fails with SnapshotStoreFailure naming the file, and leaves no temporary file", () =>
    Effect.gen(function* () {
      const dir = tempDir("blyan-snapshots-")
      const store = makeFileSnapshotStore(dir)
      // A directory where the snapshot's file belongs: the rename fails, whoever runs the test.
      fs.mkdirSync(path.join(snapshotsDir(dir), "model.json", "occupied"), { recursive: true })
      const r = yield* Effect.either(store.save(snapshot("model")))
      expect(Either.isLeft(r) && r.left._tag).toBe("SnapshotStoreFailure")
      expect(Either.isLeft(r) && r.left.message).toMatch(/model\.json/)
      expect(fs.readdirSync(snapshotsDir(dir))).toEqual(["model.json"])
    })
  )
})
