import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Option } from "effect"
import {
  checkSnapshotName,
  decodeSnapshot,
  encodeSnapshot,
  isSnapshotName,
  listSnapshots,
  SnapshotStoreFailure,
  SnapshotUnreadable,
  type Snapshot,
  type SnapshotStoreApi
} from "../../domain/ports/snapshot-store.ts"
import { causeText } from "../failure.ts"
import { replaceFileDurably } from "../durable-write.ts"

/**
 * Projection snapshots as files, `<dir>/snapshots/<projection>.json`. A save writes a temporary
 * file, fsyncs it, renames it over the old one and syncs the directory, so a snapshot file is
 * always a whole snapshot, old or new, even across a crash; concurrent savers (several commands,
 * several processes) each rename a whole file and the last one stays. Nothing is created until
 * the first save.
 */
export const snapshotsDir = (dir: string) => path.join(dir, "snapshots")

const SUFFIX = ".json"
/** A save's temporary file: `.<projection>.json.tmp-<pid>-<12 hex>`, never a snapshot's name. */
const TMP = /^\.[a-z0-9-]+\.json\.tmp-\d+-[0-9a-f]+$/
/** A temporary file this old belongs to a save that will never finish: none takes an hour. */
export const STALE_TMP_MS = 3600_000

const failure = (what: string) => (e: unknown) => new SnapshotStoreFailure({ message: `snapshot store: ${what}: ${causeText(e)}` })

const writeAtomically = (root: string, file: string, text: string) =>
  replaceFileDurably(file, text, path.join(root, `.${path.basename(file)}.tmp-${process.pid}-${crypto.randomBytes(6).toString("hex")}`))

/** Remove the temporary files of saves cut off by a crash; best effort, a later save tries again. */
const removeStaleTemps = (root: string, now: number) => {
  for (const name of fs.readdirSync(root)) {
    if (!TMP.test(name)) continue
    try {
      const file = path.join(root, name)
      if (now - fs.statSync(file).mtimeMs >= STALE_TMP_MS) fs.rmSync(file, { force: true })
    } catch {
      // Renamed or removed meanwhile by its own saver or another cleaner.
    }
  }
}

const readIfExists = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

export const makeFileSnapshotStore = (dir: string): SnapshotStoreApi => {
  const root = snapshotsDir(dir)
  const fileOf = (projection: string) => path.join(root, `${projection}${SUFFIX}`)
  const named = (projection: string) => Effect.as(checkSnapshotName(projection), fileOf(projection))

  const load = (projection: string): Effect.Effect<Option.Option<Snapshot>, SnapshotUnreadable> =>
    Effect.suspend(() => {
      // A name that could not have been saved has no snapshot (and must never reach the path).
      if (!isSnapshotName(projection)) return Effect.succeedNone
      const file = fileOf(projection)
      return Effect.try({
        try: () => readIfExists(file),
        catch: (e) => new SnapshotUnreadable({ projection, message: `snapshot ${projection} is unreadable: ${file}: ${causeText(e)}` })
      }).pipe(Effect.flatMap((text) => (text === undefined ? Effect.succeedNone : Effect.asSome(decodeSnapshot(projection, text)))))
    })

  const api: SnapshotStoreApi = {
    load,
    save: (snapshot) =>
      Effect.gen(function* () {
        const file = yield* named(snapshot.projection)
        const text = yield* encodeSnapshot(snapshot)
        yield* Effect.try({
          try: () => {
            writeAtomically(root, file, text)
            removeStaleTemps(root, Date.now())
          },
          catch: failure(`cannot save ${file}`)
        })
      }),
    list: Effect.gen(function* () {
      const names = yield* Effect.try({
        try: () => (fs.existsSync(root) ? fs.readdirSync(root).sort() : []),
        catch: failure(`cannot list ${root}`)
      })
      const projections = names.filter((n) => n.endsWith(SUFFIX)).map((n) => n.slice(0, -SUFFIX.length))
      return yield* listSnapshots(projections.filter(isSnapshotName), load)
    }),
    remove: (projection) =>
      Effect.flatMap(named(projection), (file) => Effect.try({ try: () => fs.rmSync(file, { force: true }), catch: failure(`cannot remove ${file}`) }))
  }
  return api
}
