import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Chunk, Effect, Either, Fiber, Stream, type Scope } from "effect"
import { afterEach, describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { makeFileEventStore, makeFileReplica, type FileEventStoreOptions } from "../../../adapters/eventstore/file.ts"
import type { EventStoreApi } from "../../../domain/ports/event-store.ts"
import { verifyLink, type Envelope, type Head } from "../../../domain/ledger/envelope.ts"
import { newEvent } from "../../../domain/ledger/events.ts"
import { eventStoreContract } from "../../contract/event-store.ts"
import { replicaContract } from "../../contract/replica.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { logOf } from "../../support/log.ts"
import { logBytes, segmentFiles } from "../../support/segment-files.ts"

const freshDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "blyan-file-store-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

eventStoreContract("file", () => Effect.flatMap(freshDir, (dir) => makeFileEventStore(dir)))
// A segment per append: every append after the first rolls to a new segment.
eventStoreContract("file, a segment per append", () => Effect.flatMap(freshDir, (dir) => makeFileEventStore(dir, { segmentBytes: 1 })))
replicaContract("file", () => Effect.flatMap(freshDir, (dir) => makeFileReplica(dir)))

const dirs: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-file-store-"))
  dirs.push(d)
  return d
}
const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** Opens the store on `dir` for `f` only: closed (and unlocked) when `f` ends. */
const withStore = <A, E>(dir: string, f: (s: EventStoreApi) => Effect.Effect<A, E, Scope.Scope>, opts: FileEventStoreOptions = {}) =>
  Effect.scoped(Effect.flatMap(makeFileEventStore(dir, opts), f))
const openError = (dir: string, opts: FileEventStoreOptions = {}) => Effect.scoped(Effect.flip(makeFileEventStore(dir, opts)))

const verifyChain = (envs: ReadonlyArray<Envelope>) => {
  let prev: Head | undefined
  for (const e of envs) {
    expect(Either.isRight(verifyLink(prev, e))).toBe(true)
    prev = { seq: e.seq, hash: e.hash }
  }
}

const fill = (s: EventStoreApi, n: number) =>
  Effect.gen(function* () {
    if ((yield* s.head) === undefined) yield* s.append("chain-A", [genesisEvent()], "no_stream")
    for (let i = 0; i < n; i++) yield* s.append("keys", [keyIssued(i)], "any")
    return yield* logOf(s)
  })

const crashWriter = path.resolve(__dirname, "../../support/crash-writer.ts")
const spawnWriter = (...args: string[]) => {
  const child = spawn(process.execPath, ["--import", "tsx", crashWriter, ...args], { cwd: path.resolve(__dirname, "../../.."), stdio: "pipe" })
  children.push(child)
  return child
}
const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; stderr: string }>((resolve) => {
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("exit", (code) => resolve({ code, stderr }))
  })
const firstLine = (child: ChildProcess) =>
  new Promise<string>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf("\n")
      if (nl >= 0) resolve(out.slice(0, nl))
    })
    child.on("exit", (code) => reject(new Error(`child exited with ${code} before writing a line`)))
  })

/** The pid of a process that has already exited, hence dead. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!

/** The layouts the store's own tests run on: the whole log in one segment, and a segment every append or two. */
const layouts = [
  { name: "one segment", segmentBytes: undefined },
  { name: "small segments", segmentBytes: 400 }
] as const

describe.each(layouts)("file event store on $name: durability and reopen", ({ segmentBytes }) => {
  it.effect("reopen keeps every event, byte for byte, and the chain continues", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const before = yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            yield* fill(s, 5)
            yield* s.append("node-a", [newEvent("NodeRetired", { node: "a" }), newEvent("NodeRetired", { node: "b" })], "no_stream")
            return yield* logOf(s)
          }),
        { segmentBytes }
      )
      const after = yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            const all = yield* logOf(s)
            expect(yield* s.read("node-a")).toEqual(before.slice(6))
            expect(yield* s.read("keys")).toEqual(before.slice(1, 6))
            expect(yield* s.head).toEqual({ seq: 7, hash: before[7]!.hash })
            const more = yield* s.append("node-a", [newEvent("NodeRetired", { node: "c" })], 1)
            expect(more.head.seq).toBe(8)
            return all
          }),
        { segmentBytes }
      )
      expect(after).toEqual(before)
      const third = yield* withStore(dir, (s) => logOf(s), { readOnly: true })
      expect(third.length).toBe(9)
      verifyChain(third)
    })
  )

  it.effect("group-commits concurrent appends: fewer fsyncs than appends, one contiguous chain", () =>
    Effect.gen(function* () {
      const dir = tmp()
      let syncs = 0
      const io = { sync: (fh: fs.promises.FileHandle) => (syncs++, fh.datasync()) }
      yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            yield* s.append("chain-A", [genesisEvent()], "no_stream")
            syncs = 0
            yield* Effect.forEach(
              Array.from({ length: 64 }, (_, i) => i),
              (i) => s.append("keys", [keyIssued(i)], "any"),
              { concurrency: "unbounded" }
            )
          }),
        { io, segmentBytes }
      )
      expect(syncs).toBeGreaterThan(0)
      // With small segments a batch is written in parts, one per segment it fills.
      if (segmentBytes === undefined) expect(syncs).toBeLessThan(32)
      const all = yield* withStore(dir, (s) => logOf(s))
      expect(all.length).toBe(65)
      verifyChain(all)
    })
  )

  it.effect("a failed write or fsync fails its batch, cuts the file back, and stops further appends", () =>
    Effect.gen(function* () {
      const dir = tmp()
      let failNext = false
      const io = {
        sync: (fh: fs.promises.FileHandle) => (failNext ? Promise.reject(new Error("EIO: injected")) : fh.datasync())
      }
      const before = yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            const before = yield* fill(s, 3)
            failNext = true
            const failed = yield* Effect.flip(s.append("keys", [keyIssued(100), keyIssued(101)], "any"))
            expect(failed._tag).toBe("StoreFailure")
            expect(failed.message).toContain("EIO: injected")
            failNext = false
            // Fail-stop: memory and disk must not diverge, so no more appends on this instance.
            const after = yield* Effect.flip(s.append("keys", [keyIssued(102)], "any"))
            expect(after._tag).toBe("StoreFailure")
            expect(after.message).toContain("refuses further appends")
            expect(yield* logOf(s)).toEqual(before)
            return before
          }),
        { io, segmentBytes }
      )
      const sizeAfter = logBytes(dir).length
      yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            expect(yield* logOf(s)).toEqual(before)
            const r = yield* s.append("keys", [keyIssued(103)], "any")
            expect(r.head.seq).toBe(before.length)
          }),
        { segmentBytes }
      )
      expect(logBytes(dir).length).toBeGreaterThan(sizeAfter)
    })
  )

  it.effect("with parts syncing side by side, an fsync failing at any point loses no acknowledged append and keeps no failed one (property)", () =>
    Effect.gen(function* () {
      let overlapped = 0
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 16 }), async (failAt) => {
            const dir = tmp()
            let syncs = 0
            let syncing = 0
            let armed = false
            const io = {
              sync: async (fh: fs.promises.FileHandle) => {
                const n = ++syncs
                if (++syncing > 1) overlapped++
                try {
                  // A slow disk, so that the writer writes the next part while this one syncs.
                  await new Promise((resolve) => setTimeout(resolve, 2))
                  if (armed && n === failAt) throw new Error("EIO: injected")
                  await fh.datasync()
                } finally {
                  syncing--
                }
              }
            }
            const outcomes = await Effect.runPromise(
              withStore(
                dir,
                (s) =>
                  Effect.gen(function* () {
                    yield* s.append("chain-A", [genesisEvent()], "no_stream")
                    syncs = 0
                    armed = true
                    return yield* Effect.forEach(
                      Array.from({ length: 48 }, (_, i) => i),
                      (i) => Effect.either(s.append("keys", [keyIssued(i)], "any")),
                      { concurrency: 8 }
                    )
                  }),
                { io, segmentBytes }
              )
            )
            const acked = outcomes.flatMap((o) => (Either.isRight(o) ? o.right.envelopes : [])).sort((a, b) => a.seq - b.seq)
            for (const o of outcomes) if (Either.isLeft(o)) expect(o.left._tag).toBe("StoreFailure")
            const log = await Effect.runPromise(withStore(dir, (s) => logOf(s), { segmentBytes }))
            verifyChain(log)
            expect(log.slice(1)).toEqual(acked)
            expect(acked.length < 48).toBe(failAt <= syncs)
          }),
          { numRuns: 12 }
        )
      )
      expect(overlapped).toBeGreaterThan(0)
    })
  )

  it.effect("a read-only open of a missing directory is an empty log and creates nothing", () =>
    Effect.gen(function* () {
      const dir = path.join(tmp(), "nothing-here")
      const head = yield* withStore(dir, (s) => s.head, { readOnly: true })
      expect(head).toBeUndefined()
      expect(fs.existsSync(dir)).toBe(false)
    })
  )
})

describe("file event store: single-writer lock", () => {
  it.effect("refuses a second writer in the same process, naming the directory and pid; frees the lock on close", () =>
    Effect.gen(function* () {
      const dir = tmp()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const first = yield* makeFileEventStore(dir)
          yield* fill(first, 1)
          const err = yield* Effect.flip(Effect.scoped(makeFileEventStore(dir)))
          expect(err._tag).toBe("StoreFailure")
          expect(err.message).toBe(`data directory ${dir} is locked by process ${process.pid} (another blyan is writing to it)`)
          // The refused open must not have released the holder's lock.
          expect(fs.readFileSync(path.join(dir, "events", "LOCK"), "utf8").trim()).toBe(String(process.pid))
        })
      )
      expect(fs.existsSync(path.join(dir, "events", "LOCK"))).toBe(false)
      expect((yield* withStore(dir, (s) => logOf(s))).length).toBe(2)
    })
  )

  // Live: these wait on child processes, and a busy lock is retried after a sleep.
  it.live("refuses a writer in another process while this one holds the lock", () =>
    Effect.gen(function* () {
      const dir = tmp()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* makeFileEventStore(dir)
          yield* fill(s, 1)
          const { code, stderr } = yield* Effect.promise(() => exited(spawnWriter("probe", dir)))
          expect(code).toBe(3)
          expect(stderr).toContain(`data directory ${dir} is locked by process ${process.pid}`)
        })
      )
      const { code } = yield* Effect.promise(() => exited(spawnWriter("probe", dir)))
      expect(code).toBe(0)
    })
  )

  it.live("refuses to open while another process holds the lock, and takes it over once that process is killed", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const child = spawnWriter("hold", dir)
      expect(yield* Effect.promise(() => firstLine(child))).toBe("ready")
      const err = yield* openError(dir)
      expect(err.message).toBe(`data directory ${dir} is locked by process ${child.pid} (another blyan is writing to it)`)
      const gone = exited(child)
      child.kill("SIGKILL")
      yield* Effect.promise(() => gone)
      // The killed writer could not remove its lock: it is stale, and taken over.
      expect(fs.readFileSync(path.join(dir, "events", "LOCK"), "utf8").trim()).toBe(String(child.pid))
      yield* withStore(dir, (s) =>
        Effect.gen(function* () {
          expect(fs.readFileSync(path.join(dir, "events", "LOCK"), "utf8").trim()).toBe(String(process.pid))
          yield* fill(s, 1)
        })
      )
    })
  )

  it.live("takes over a stale lock left by a dead pid, and an unreadable one", () =>
    Effect.gen(function* () {
      for (const content of [`${deadPid()}\n`, "not a pid"]) {
        const dir = tmp()
        fs.mkdirSync(path.join(dir, "events"), { recursive: true })
        fs.writeFileSync(path.join(dir, "events", "LOCK"), content)
        const n = yield* withStore(dir, (s) =>
          Effect.gen(function* () {
            expect(fs.readFileSync(path.join(dir, "events", "LOCK"), "utf8").trim()).toBe(String(process.pid))
            return (yield* fill(s, 2)).length
          })
        )
        expect(n).toBe(3)
        expect(fs.existsSync(path.join(dir, "events", "LOCK"))).toBe(false)
      }
    })
  )

})

describe.each(layouts)("file event store on $name: a read-only open beside the writer", ({ segmentBytes }) => {
  // Live: the read-only store's subscribe follows the files by polling them on the clock.
  it.scopedLive("opens read-only while a writer holds the lock: a snapshot, no appends, and subscribe follows the writer", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const writer = yield* makeFileEventStore(dir, { segmentBytes })
      const initial = yield* fill(writer, 3)
      const reader = yield* makeFileEventStore(dir, { readOnly: true })
      expect(yield* logOf(reader)).toEqual(initial)
      const refused = yield* Effect.flip(reader.append("keys", [keyIssued(9)], "any"))
      expect(refused._tag).toBe("StoreFailure")
      expect(refused.message).toContain("opened read-only")
      const segmentsBefore = segmentFiles(dir).length
      const follower = yield* reader.subscribe(2).pipe(Stream.take(9), Stream.runCollect, Effect.fork)
      yield* writer.append("keys", [keyIssued(10)], "any")
      yield* writer.append("node-z", [newEvent("NodeRetired", { node: "z" }), newEvent("NodeRetired", { node: "y" })], "any")
      for (let i = 11; i < 15; i++) yield* writer.append("keys", [keyIssued(i)], "any")
      const seen = Chunk.toReadonlyArray(yield* Fiber.join(follower))
      expect(seen).toEqual(yield* logOf(writer, 2))
      // With small segments the follower crossed segment rolls.
      if (segmentBytes !== undefined) expect(segmentFiles(dir).length).toBeGreaterThan(segmentsBefore + 1)
      // The snapshot itself does not move.
      expect((yield* logOf(reader)).length).toBe(4)
      expect(yield* reader.read("keys")).toEqual(initial.slice(1))
      expect(fs.readFileSync(path.join(dir, "events", "LOCK"), "utf8").trim()).toBe(String(process.pid))
    })
  )
})
