import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { storeFailure } from "../failure.ts"
import { isAlive } from "../process.ts"

/**
 * The single-writer lock: an exclusive, non-blocking `flock(2)` on `LOCK` in `lockDir`.
 *
 * The kernel owns the lock, not the file's content: it belongs to the open file description, so
 * it goes when its holder closes the file, exits or is killed. There is therefore no stale lock
 * and no takeover: a `LOCK` left by a killed writer is just a file nobody has locked, and the next
 * opener locks it. The pid written into it serves only the "locked by process N" message and the
 * warning that the previous writer did not shut down cleanly.
 *
 * Why it excludes any number of concurrent openers, although a clean release removes the file:
 * - a process holds the lock when it has flocked the inode that `LOCK` names at that moment;
 *   after flock succeeds it checks, by (dev, ino), that `LOCK` still names the inode it locked,
 *   and starts over if not;
 * - `LOCK` never names another inode while someone holds it: opening with O_CREAT never replaces
 *   an existing file, and the only unlink is the holder's own, made before it closes (and so
 *   before anyone else can flock that inode);
 * - so two holders would have flocked the same inode at once, which flock refuses; a process that
 *   locks an inode after its holder unlinked it sees the path gone or renamed to a new inode, and
 *   retries on the new one.
 * Removing `LOCK` by hand while a writer runs breaks this (a second writer could create and lock a
 * new one); nothing needs doing by hand any more, since a dead holder frees the lock by itself.
 * Linux supports flock on local filesystems and emulates it with byte-range locks on NFS.
 */
export const acquireWriterLock = (dataDir: string, lockDir: string): Effect.Effect<void, StoreFailure, Scope.Scope> => {
  const file = path.join(lockDir, "LOCK")
  const io = (what: string) => storeFailure(`cannot ${what} ${file}`)
  const lockedBy = (holder: number | undefined) =>
    new StoreFailure({
      reason: `data directory ${dataDir} is locked by ${holder === undefined ? "another process" : `process ${holder}`} (another blyan is writing to it)`
    })
  const take = Effect.gen(function* () {
    const flock = yield* Effect.try({ try: loadFlock, catch: io("load fs-ext to lock") })
    for (let attempt = 0; attempt < 50; attempt++) {
      const r = yield* Effect.try({ try: () => lockOnce(file, flock), catch: io("lock") })
      if (r._tag === "Held") {
        if (r.previous !== "" && r.previous !== String(process.pid))
          yield* Effect.logWarning(
            `${file} was left by ${/^\d+$/.test(r.previous) ? `process ${r.previous}` : "a writer"}, which did not close the store ` +
              `(killed or crashed); its lock died with it, and this process now holds it`
          )
        return r.fd
      }
      if (r._tag === "Busy") {
        // A holder that has just locked may not have written its pid yet: ask again briefly, so
        // the message can name it, but never name a pid that is not alive.
        if (r.holder !== undefined && isAlive(r.holder)) return yield* lockedBy(r.holder)
        if (attempt >= 5) return yield* lockedBy(undefined)
        yield* Effect.sleep("20 millis")
      }
      // "Moved": the inode we locked was released and unlinked meanwhile; go again on the new one.
    }
    return yield* new StoreFailure({ reason: `cannot take the lock ${file}: it keeps changing hands` })
  })
  return Effect.asVoid(Effect.acquireRelease(take, (fd) => Effect.sync(() => release(file, fd))))
}

type Flock = (fd: number, flags: "exnb") => void

let flockSync: Flock | undefined
/** fs-ext is a native addon built from source at install; loaded on first use, so read-only opens never need it. */
const loadFlock = (): Flock => (flockSync ??= (createRequire(import.meta.url)("fs-ext") as { flockSync: Flock }).flockSync)

type Attempt =
  | { readonly _tag: "Held"; readonly fd: number; readonly previous: string }
  | { readonly _tag: "Busy"; readonly holder: number | undefined }
  | { readonly _tag: "Moved" }

const sameFile = (a: fs.BigIntStats, b: fs.BigIntStats) => a.dev === b.dev && a.ino === b.ino

const statIfExists = (file: string): fs.BigIntStats | undefined => fs.statSync(file, { bigint: true, throwIfNoEntry: false })

const readAll = (fd: number): string => {
  const size = Number(fs.fstatSync(fd).size)
  const buf = Buffer.alloc(Math.min(size, 64))
  const n = fs.readSync(fd, buf, 0, buf.length, 0)
  return buf.subarray(0, n).toString("utf8").trim()
}

const lockOnce = (file: string, flock: Flock): Attempt => {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
  try {
    try {
      flock(fd, "exnb")
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== "EAGAIN" && code !== "EWOULDBLOCK") throw e
      const pid = Number(readAll(fd))
      fs.closeSync(fd)
      return { _tag: "Busy", holder: Number.isSafeInteger(pid) && pid > 0 ? pid : undefined }
    }
    const now = statIfExists(file)
    if (now === undefined || !sameFile(now, fs.fstatSync(fd, { bigint: true }))) {
      fs.closeSync(fd)
      return { _tag: "Moved" }
    }
    const previous = readAll(fd)
    fs.ftruncateSync(fd, 0)
    fs.writeSync(fd, `${process.pid}\n`, 0)
    return { _tag: "Held", fd, previous }
  } catch (e) {
    try {
      fs.closeSync(fd)
    } catch {
      // Already closed on the way to the error.
    }
    throw e
  }
}

/** Unlink while still holding (so nobody can lock the old inode and think it current), then close. */
const release = (file: string, fd: number) => {
  try {
    const now = statIfExists(file)
    if (now !== undefined && sameFile(now, fs.fstatSync(fd, { bigint: true }))) fs.unlinkSync(file)
  } catch {
    // Left in place, the file is harmless: whoever opens next finds it unlocked.
  }
  fs.closeSync(fd)
}
