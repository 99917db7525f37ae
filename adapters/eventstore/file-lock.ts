import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import { StoreFailure } from "../../domain/ledger/errors.ts"

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: the process exists but belongs to someone else; it still holds the lock.
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readPid = (file: string): number | "missing" | "unreadable" => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "missing"
    throw e
  }
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : "unreadable"
}

const tryCreate = (file: string): boolean => {
  let fd: number
  try {
    fd = fs.openSync(file, "wx", 0o644)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
  try {
    fs.writeSync(fd, `${process.pid}\n`)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  return true
}

/**
 * The single-writer lock: `LOCK` in `lockDir`, created exclusively and holding our pid. A lock
 * whose pid is no longer alive was left by a crash and is taken over. Released with the scope,
 * and only if it is still ours.
 *
 * Limits: two processes taking over the same stale lock at the same instant can race (both see
 * the dead pid, one may remove the other's fresh lock); and a recycled pid keeps a stale lock
 * looking alive, in which case the message names the pid so a person can remove the file.
 */
export const acquireWriterLock = (dataDir: string, lockDir: string): Effect.Effect<void, StoreFailure, Scope.Scope> => {
  const file = path.join(lockDir, "LOCK")
  const io = (what: string, e: unknown) => new StoreFailure({ reason: `cannot ${what} ${file}: ${(e as Error).message}` })
  const take = Effect.gen(function* () {
    for (let attempt = 0; ; attempt++) {
      // Bounded: a lock that keeps changing hands under us is reported rather than fought over.
      if (attempt > 50) return yield* new StoreFailure({ reason: `cannot take the lock ${file}: it keeps changing` })
      const created = yield* Effect.try({ try: () => tryCreate(file), catch: (e) => io("create", e) })
      if (created) return
      const holder = yield* Effect.try({ try: () => readPid(file), catch: (e) => io("read", e) })
      if (holder === "missing") continue
      if (holder === "unreadable" && attempt < 5) {
        // Another opener may be between creating the file and writing its pid: give it a moment.
        yield* Effect.sleep("20 millis")
        continue
      }
      if (typeof holder === "number" && isAlive(holder))
        return yield* new StoreFailure({ reason: `data directory ${dataDir} is locked by process ${holder} (another blyan is writing to it)` })
      yield* Effect.logWarning(`taking over the stale lock ${file} (held by ${holder === "unreadable" ? "an unreadable pid" : `dead process ${holder}`})`)
      yield* Effect.try({
        try: () => fs.rmSync(file, { force: true }),
        catch: (e) => io("remove stale lock", e)
      })
    }
  })
  const release = Effect.sync(() => {
    try {
      if (readPid(file) === process.pid) fs.rmSync(file, { force: true })
    } catch {
      // Nothing to do: a lock we cannot read or remove is reported by the next opener.
    }
  })
  return Effect.acquireRelease(take, () => release)
}
