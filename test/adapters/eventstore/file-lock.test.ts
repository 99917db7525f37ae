import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { Effect, Exit, Logger, Scope } from "effect"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { acquireWriterLock } from "../../../adapters/eventstore/file-lock.ts"

const dirs: string[] = []
const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** A data directory with its `events` folder, removed after the test. */
const dataDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-lock-"))
  dirs.push(d)
  fs.mkdirSync(path.join(d, "events"))
  return d
}
const lockFile = (dir: string) => path.join(dir, "events", "LOCK")
const lockedBy = (dir: string, pid: number) => `data directory ${dir} is locked by process ${pid} (another blyan is writing to it)`

/** The pid of a process that has already exited, hence dead. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!

const contender = path.resolve(__dirname, "../../support/lock-contender.ts")
const spawnContender = (...args: string[]) => {
  const child = spawn(process.execPath, ["--import", "tsx", contender, ...args], { cwd: path.resolve(__dirname, "../../.."), stdio: "pipe" })
  children.push(child)
  let stderr = ""
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  // Lines from the child's stdout, handed out in order; a child that exits early fails the wait.
  const lines: string[] = []
  const waiting: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = []
  readline.createInterface({ input: child.stdout! }).on("line", (l) => {
    const w = waiting.shift()
    if (w) w.resolve(l)
    else lines.push(l)
  })
  const exit = new Promise<number | null>((resolve) => child.on("exit", resolve))
  void exit.then((code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`contender exited with ${code}: ${stderr}`))
  })
  const nextLine = () =>
    lines.length > 0
      ? Promise.resolve(lines.shift()!)
      : child.exitCode !== null || child.signalCode !== null
        ? Promise.reject(new Error(`contender exited with ${child.exitCode}: ${stderr}`))
        : new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }))
  return { child, nextLine, exit: exit.then((code) => ({ code, stderr })) }
}

describe("writer lock: mutual exclusion across processes", () => {
  // Live, as all the tests here: they wait on child processes, and a busy lock is retried after a sleep.
  it.live("never lets two processes hold the lock, when many start together against a stale LOCK", () =>
    Effect.gen(function* () {
      const processes = 8
      const rounds = 6
      const attempts = 12
      const dir = dataDir()
      const cs = Array.from({ length: processes }, () => spawnContender("contend", dir, String(attempts)))
      for (const c of cs) expect(yield* Effect.promise(() => c.nextLine())).toBe("ready")

      for (let round = 0; round < rounds; round++) {
        // What a writer killed while holding the lock leaves behind.
        fs.writeFileSync(lockFile(dir), `${deadPid()}\n`)
        fs.rmSync(path.join(dir, "journal"), { force: true })
        for (const c of cs) c.child.stdin!.write("go\n")
        const reports = yield* Effect.promise(() => Promise.all(cs.map((c) => c.nextLine())))

        let held = 0
        for (const report of reports) {
          const [word, h, refused, overlaps] = report.split(" ")
          expect(word).toBe("done")
          expect(Number(overlaps)).toBe(0)
          expect(Number(h) + Number(refused)).toBe(attempts)
          held += Number(h)
        }
        expect(held).toBeGreaterThan(0)
        // Every hold is "+pid" then "-pid" of the same process, never interleaved with another's.
        const journal = fs.readFileSync(path.join(dir, "journal"), "utf8").trim().split("\n")
        expect(journal.length).toBe(2 * held)
        for (let i = 0; i < journal.length; i += 2) {
          expect(journal[i]!.startsWith("+")).toBe(true)
          expect(journal[i + 1]).toBe(`-${journal[i]!.slice(1)}`)
        }
        expect(fs.existsSync(path.join(dir, "HELD"))).toBe(false)
      }
      for (const c of cs) c.child.stdin!.end()
      for (const c of cs) expect((yield* Effect.promise(() => c.exit)).code).toBe(0)
    })
  )
})

describe("writer lock: held, refused, released", () => {
  const tryLock = (dir: string) => Effect.exit(Effect.scoped(acquireWriterLock(dir, path.join(dir, "events"))))

  it.live("refuses while a live process holds it, naming that process; is free once the holder is killed", () =>
    Effect.gen(function* () {
      const dir = dataDir()
      const holder = spawnContender("hold", dir)
      expect(yield* Effect.promise(() => holder.nextLine())).toBe("ready")
      const refused = yield* tryLock(dir)
      expect(Exit.isFailure(refused)).toBe(true)
      if (Exit.isFailure(refused)) {
        const err = (refused.cause as { error?: { _tag: string; message: string } }).error
        expect(err?._tag).toBe("StoreFailure")
        expect(err?.message).toBe(lockedBy(dir, holder.child.pid!))
      }
      holder.child.kill("SIGKILL")
      yield* Effect.promise(() => holder.exit)
      // The kernel released the dead holder's lock: no takeover, no wait.
      expect(Exit.isSuccess(yield* tryLock(dir))).toBe(true)
    })
  )

  it.live("refuses a second holder in the same process, keeps the first, and releases on scope close", () =>
    Effect.gen(function* () {
      const dir = dataDir()
      const scope = yield* Scope.make()
      yield* Scope.extend(acquireWriterLock(dir, path.join(dir, "events")), scope)
      expect(fs.readFileSync(lockFile(dir), "utf8").trim()).toBe(String(process.pid))

      const inProcess = yield* Effect.flip(Effect.scoped(acquireWriterLock(dir, path.join(dir, "events"))))
      expect(inProcess.message).toBe(lockedBy(dir, process.pid))
      const probe = spawnContender("probe", dir)
      const refused = yield* Effect.promise(() => probe.exit)
      expect(refused.code).toBe(3)
      expect(refused.stderr).toContain(lockedBy(dir, process.pid))
      // The refusals did not loosen the holder's lock.
      expect(fs.readFileSync(lockFile(dir), "utf8").trim()).toBe(String(process.pid))

      yield* Scope.close(scope, Exit.void)
      expect(fs.existsSync(lockFile(dir))).toBe(false)
      expect((yield* Effect.promise(() => spawnContender("probe", dir).exit)).code).toBe(0)
    })
  )

  it.live("takes a LOCK left by a dead process, saying so through the Effect logger and not the console", () =>
    Effect.gen(function* () {
      const dir = dataDir()
      const dead = deadPid()
      fs.writeFileSync(lockFile(dir), `${dead}\n`)
      const logged: string[] = []
      const logger = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
      const written: string[] = []
      const spies = (["log", "warn", "error", "info"] as const).map((k) => {
        const original = console[k]
        console[k] = (...args: unknown[]) => void written.push(args.map(String).join(" "))
        return () => (console[k] = original)
      })
      yield* Effect.scoped(acquireWriterLock(dir, path.join(dir, "events"))).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Effect.ensuring(Effect.sync(() => spies.forEach((restore) => restore())))
      )
      expect(written).toEqual([])
      expect(logged.length).toBe(1)
      expect(logged[0]).toContain("WARN")
      expect(logged[0]).toContain(String(dead))
    })
  )
})
