import { crc32 } from "node:zlib"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Chunk, Effect, Either, Fiber, Runtime, Schedule, Stream, type Scope } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { eventsDir, inspectLogFile, makeFileEventStore, segmentPath, type FileEventStoreOptions } from "../../../adapters/eventstore/file.ts"
import { HEADER_BYTES, headerChecksum } from "../../../adapters/eventstore/file-format.ts"
import { verificationPoolReady } from "../../../adapters/verify/envelope-pool.ts"
import type { EventStoreApi } from "../../../domain/ports/event-store.ts"
import { verifyChain, type Envelope } from "../../../domain/ledger/envelope.ts"
import { newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { logOf } from "../../support/log.ts"
import { segmentFiles, snapshotFiles } from "../../support/segment-files.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-file-segments-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const tmp = () => fs.mkdtempSync(path.join(root, `${n++}-`))

const withStore = <A, E>(dir: string, f: (s: EventStoreApi) => Effect.Effect<A, E, Scope.Scope>, opts: FileEventStoreOptions = {}) =>
  Effect.scoped(Effect.flatMap(makeFileEventStore(dir, opts), f))

/** Put `files` (as from snapshotFiles) in a fresh directory's events/. */
const restore = (files: ReadonlyMap<string, Buffer>) => {
  const dir = tmp()
  fs.mkdirSync(eventsDir(dir))
  for (const [name, bytes] of files) fs.writeFileSync(path.join(eventsDir(dir), name), bytes)
  return dir
}

type Append = { readonly stream: string; readonly events: NewEvent[] }

/** Appends over several streams, some of two events, so that streams interleave across segments. */
const appends = (count: number, salt = 0): Append[] =>
  Array.from({ length: count }, (_, i) => {
    const k = i + salt
    if (i % 5 === 1) return { stream: `node-n${k % 3}`, events: [newEvent("NodeBanned", { node: `n${k}`, reason: `r${k}` }), newEvent("NodeRetired", { node: `n${k}` })] }
    if (i % 5 === 3) return { stream: `node-n${k % 3}`, events: [newEvent("NodeRetired", { node: `n${k}` })] }
    return { stream: "keys", events: [keyIssued(k)] }
  })

const write = (s: EventStoreApi, xs: ReadonlyArray<Append>) =>
  Effect.gen(function* () {
    if ((yield* s.head) === undefined) yield* s.append("chain-A", [genesisEvent()], "no_stream")
    for (const a of xs) yield* s.append(a.stream, a.events, "any")
  })

/** Genesis, then `appends` appends of `perAppend` keys each: a long log, quickly written; what was appended. */
const keyRuns = (s: EventStoreApi, appends: number, perAppend: number) =>
  Effect.gen(function* () {
    const out = [...(yield* s.append("chain-A", [genesisEvent()], "no_stream")).envelopes]
    for (let k = 0; k < appends; k++) out.push(...(yield* s.append("keys", Array.from({ length: perAppend }, (_, i) => keyIssued(k * perAppend + i)), "any")).envelopes)
    return out
  })

/** Until the verification workers have loaded, large batches are verified inline: wait for them, so that they are used. */
const poolLoaded = Effect.repeat(Effect.sync(verificationPoolReady), { until: (ready) => ready, schedule: Schedule.spaced("20 millis") })

const streamsOf = (log: ReadonlyArray<Envelope>) => [...new Set(log.map((e) => e.stream))]

/** Everything a store answers about its log: the log, each stream, the head. */
const viewOf = (s: EventStoreApi, streams: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const log = yield* logOf(s)
    const byStream: Record<string, ReadonlyArray<Envelope>> = {}
    for (const name of streams) byStream[name] = yield* s.read(name)
    return { log, byStream, head: yield* s.head }
  })

const expectedView = (log: ReadonlyArray<Envelope>) => {
  const byStream: Record<string, ReadonlyArray<Envelope>> = {}
  for (const name of streamsOf(log)) byStream[name] = log.filter((e) => e.stream === name)
  const last = log[log.length - 1]!
  return { log, byStream, head: { seq: last.seq, hash: last.hash } }
}

describe("file event store: segments", () => {
  it.effect("rolls to a new segment, named after its first seq, once one reaches segmentBytes; an append never spans two", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const segmentBytes = 1000
      const log = yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            yield* write(s, appends(20))
            // Concurrent appends group-commit into batches that are split at the rolls.
            yield* Effect.forEach(appends(40, 100), (a) => s.append(a.stream, a.events, "any"), { concurrency: "unbounded", discard: true })
            return yield* logOf(s)
          }),
        { segmentBytes }
      )
      expect(Either.isRight(verifyChain(log))).toBe(true)
      const { records } = yield* inspectLogFile(dir)
      const files = segmentFiles(dir)
      expect(files.length).toBeGreaterThan(5)
      for (const file of files) {
        const name = path.basename(file)
        const mine = records.filter((r) => r.segment === name)
        expect(mine.length).toBeGreaterThan(0)
        expect(file).toBe(segmentPath(dir, mine[0]!.seq))
        // Whole appends only, each starting before the limit (or alone in its segment).
        expect(mine.at(-1)!.continues).toBe(false)
        mine.forEach((r, i) => {
          const startsAppend = i === 0 || !mine[i - 1]!.continues
          if (startsAppend && i > 0) expect(r.offset).toBeLessThan(segmentBytes)
        })
        if (file !== files.at(-1)) expect(fs.statSync(file).size).toBeGreaterThanOrEqual(segmentBytes)
      }
    })
  )

  it.effect("adopts a previous version's events/log.seg: a reader reads it in place, a writer renames it to the first segment", () =>
    Effect.gen(function* () {
      const source = tmp()
      const log = yield* withStore(source, (s) => Effect.zipRight(write(s, appends(6)), logOf(s)))
      const dir = tmp()
      fs.mkdirSync(eventsDir(dir))
      const legacy = path.join(eventsDir(dir), "log.seg")
      fs.copyFileSync(segmentPath(source), legacy)
      const bytes = fs.readFileSync(legacy)

      expect(yield* withStore(dir, (s) => viewOf(s, streamsOf(log)), { readOnly: true })).toEqual(expectedView(log))
      expect(fs.readdirSync(eventsDir(dir))).toEqual(["log.seg"])

      yield* withStore(dir, (s) =>
        Effect.gen(function* () {
          expect(yield* viewOf(s, streamsOf(log))).toEqual(expectedView(log))
          yield* s.append("keys", [keyIssued(99)], log.filter((e) => e.stream === "keys").length - 1)
        })
      )
      expect(fs.existsSync(legacy)).toBe(false)
      expect(fs.readFileSync(segmentPath(dir)).subarray(0, bytes.length).equals(bytes)).toBe(true)
      expect((yield* withStore(dir, (s) => logOf(s), { readOnly: true })).length).toBe(log.length + 1)

      // Both layouts at once is not something to guess about.
      fs.copyFileSync(segmentPath(source), legacy)
      for (const readOnly of [true, false]) {
        const e = yield* Effect.flip(withStore(dir, (s) => s.head, { readOnly }))
        expect(e.message).toMatch(/both log.seg .* and numbered segments/)
      }
    })
  )

  it.effect("segments that do not follow on from one another are refused, naming the first missing seq", () =>
    Effect.gen(function* () {
      const source = tmp()
      yield* withStore(source, (s) => write(s, appends(12)), { segmentBytes: 600 })
      const pristine = snapshotFiles(source)
      const { records } = yield* inspectLogFile(source)
      const segs = [...pristine.keys()].filter((f) => f.endsWith(".seg"))
      expect(segs.length).toBeGreaterThan(4)
      const firstOf = (seg: string) => records.find((r) => r.segment === seg)!.seq
      const refused = (damage: (files: Map<string, Buffer>) => void, seq: number) =>
        Effect.gen(function* () {
          const files = new Map(pristine)
          damage(files)
          const dir = restore(files)
          for (const readOnly of [true, false]) {
            const e = yield* Effect.flip(withStore(dir, (s) => logOf(s), { readOnly }))
            expect(e).toMatchObject({ _tag: "StoreFailure", seq })
          }
        })
      const without = (...names: string[]) => (files: Map<string, Buffer>) => names.forEach((n) => files.delete(n))
      const idxOf = (seg: string) => seg.replace(/\.seg$/, ".idx")
      // The first segment gone; one in the middle gone; the last one renamed past its place.
      yield* refused(without(segs[0]!, idxOf(segs[0]!)), 0)
      yield* refused(without(segs[2]!, idxOf(segs[2]!)), firstOf(segs[2]!))
      yield* refused((files) => {
        const last = segs.at(-1)!
        files.set(path.basename(segmentPath("", firstOf(last) + 3)), files.get(last)!)
        without(last, idxOf(last))(files)
      }, firstOf(segs.at(-1)!))
      // A sealed segment that lost its last append (of one event).
      const k = segs.findIndex((seg, i) => i > 0 && i < segs.length - 1 && !records.filter((r) => r.segment === seg).at(-2)?.continues)
      const lastRecord = records.filter((r) => r.segment === segs[k]!).at(-1)!
      yield* refused((files) => files.set(segs[k]!, files.get(segs[k]!)!.subarray(0, lastRecord.offset)), lastRecord.seq)
    })
  )

  it.effect("a failed sync in a segment a batch rolled into fails the appends from there on; those before it are acknowledged and kept", () =>
    Effect.gen(function* () {
      const dir = tmp()
      let syncs = 0
      let failAt = Infinity
      const io = { sync: (fh: fs.promises.FileHandle) => (++syncs === failAt ? Promise.reject(new Error("EIO: injected")) : fh.datasync()) }
      const results = yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            yield* s.append("chain-A", [genesisEvent()], "no_stream")
            // A segment per append, so each append is its own write and sync: the third fails.
            failAt = syncs + 3
            return yield* Effect.forEach(
              Array.from({ length: 6 }, (_, i) => i),
              (i) => Effect.either(s.append("keys", [keyIssued(i)], "any")),
              { concurrency: "unbounded" }
            )
          }),
        { io, segmentBytes: 1 }
      )
      const acked = results.flatMap((r) => (Either.isRight(r) ? r.right.envelopes : []))
      expect(acked.map((e) => e.seq).sort()).toEqual([1, 2])
      for (const r of results) if (Either.isLeft(r)) expect(r.left.message).toMatch(/EIO: injected|refuses further appends/)
      yield* withStore(
        dir,
        (s) =>
          Effect.gen(function* () {
            const log = yield* logOf(s)
            expect(log.slice(1)).toEqual([...acked].sort((a, b) => a.seq - b.seq))
            expect((yield* s.append("keys", [keyIssued(9)], "any")).head.seq).toBe(3)
          }),
        { segmentBytes: 1 }
      )
    })
  )

  it.effect("open reads no event of a sealed segment: a damaged record there does not stop a reopen, but fails readAll(0) naming its seq", () =>
    Effect.gen(function* () {
      const source = tmp()
      const log = yield* withStore(source, (s) => Effect.zipRight(write(s, appends(30)), logOf(s)), { segmentBytes: 1500 })
      const { records } = yield* inspectLogFile(source)
      // A record in the middle of an early segment, holding a key (so "keys" is the stream it breaks).
      const victim = records.find((r, i) => i > 0 && r.segment === records[i - 1]!.segment && r.segment === records[i + 1]?.segment && log[r.seq]!.stream === "keys")!
      expect(victim.segment).not.toBe(records.at(-1)!.segment)
      const file = path.join(eventsDir(source), victim.segment)
      const bytes = fs.readFileSync(file)
      bytes[victim.offset + HEADER_BYTES + 5]! ^= 0x20
      fs.writeFileSync(file, bytes)
      const untouched = "node-n1"
      for (const readOnly of [true, false]) {
        yield* withStore(
          source,
          (s) =>
            Effect.gen(function* () {
              expect(yield* s.head).toEqual({ seq: log.at(-1)!.seq, hash: log.at(-1)!.hash })
              expect(yield* s.read(untouched)).toEqual(log.filter((e) => e.stream === untouched))
              const failed = yield* Effect.flip(logOf(s))
              expect(failed).toMatchObject({ _tag: "StoreFailure", seq: victim.seq })
              expect((yield* Effect.flip(s.read("keys"))).seq).toBe(victim.seq)
              // The log after the damaged segment reads, verified from where it starts.
              const after = records.find((r) => r.seq > victim.seq && r.segment !== victim.segment)!.seq
              expect(yield* logOf(s, after)).toEqual(log.slice(after))
              if (!readOnly) expect((yield* s.append("keys", [keyIssued(500)], "any")).head.seq).toBe(log.length)
            }),
          { readOnly, segmentBytes: 1500 }
        )
      }
    })
  )

  it.live("a log of several read windows reads back whole, in order, as the read reuses its windows behind it", () =>
    Effect.gen(function* () {
      yield* poolLoaded
      const dir = tmp()
      // About 14 MB: past three 4 MB windows, so that the fourth reuses the first.
      const written = yield* withStore(dir, (s) => keyRuns(s, 40, 1000))
      expect(segmentFiles(dir)).toHaveLength(1)
      for (const readOnly of [true, false]) expect(yield* withStore(dir, (s) => logOf(s), { readOnly })).toEqual(written)
    })
  )

  it.live("deep in a long log, read in batches checked on the worker threads, a damaged payload fails readAll(0) naming its seq, forged checksums or not", () =>
    Effect.gen(function* () {
      yield* poolLoaded
      const source = tmp()
      const log = yield* withStore(source, (s) => keyRuns(s, 12, 500), { segmentBytes: 1 << 20 })
      const { records } = yield* inspectLogFile(source)
      // In a sealed segment, so that opening the log reads none of it.
      const victim = records[2500]!
      expect(victim.segment).not.toBe(records.at(-1)!.segment)
      const file = path.join(eventsDir(source), victim.segment)
      for (const forged of [false, true]) {
        const bytes = fs.readFileSync(file)
        const payload = bytes.subarray(victim.offset + HEADER_BYTES, victim.offset + victim.bytes)
        payload[5]! ^= 0x20
        if (forged) {
          bytes.writeUInt32LE(crc32(payload), victim.offset + 4)
          bytes.writeUInt32LE(headerChecksum(bytes, victim.offset), victim.offset + 8)
        }
        const dir = restore(new Map([...snapshotFiles(source), [victim.segment, bytes]]))
        const failed = yield* withStore(dir, (s) => Effect.flip(logOf(s)), { readOnly: true })
        expect(failed).toMatchObject({ _tag: "StoreFailure", seq: victim.seq })
        if (!forged) expect(failed.reason).toContain(`record payload checksum mismatch at byte ${victim.offset}`)
        else expect(failed.reason).not.toContain("checksum")
        // Read from the next segment on, the log is whole.
        const next = records.find((r) => r.segment !== victim.segment)!.seq
        expect(yield* withStore(dir, (s) => logOf(s, next), { readOnly: true })).toEqual(log.slice(next))
      }
    })
  )

  it.effect("an index missing, cut short, overwritten or stale is rebuilt from its segment, and the log reads back the same (property)", () =>
    Effect.gen(function* () {
      // Several entries per index, so damage can fall in the middle of one, where open does not look.
      const segmentBytes = 2500
      const source = tmp()
      // Index files of the same log earlier on, and of another log: stale indexes to put in place.
      const earlier = yield* withStore(source, (s) => Effect.zipRight(write(s, appends(14)), Effect.sync(() => snapshotFiles(source))), { segmentBytes })
      const log = yield* withStore(source, (s) => Effect.zipRight(write(s, appends(16, 14)), logOf(s)), { segmentBytes })
      const other = tmp()
      yield* withStore(other, (s) => write(s, appends(30, 7).reverse()), { segmentBytes })
      const pristine = snapshotFiles(source)
      const stale = [earlier, snapshotFiles(other)]
      const indexes = [...pristine.keys()].filter((f) => f.endsWith(".idx"))
      expect(indexes.length).toBeGreaterThan(4)
      const want = expectedView(log)
      const streams = streamsOf(log)

      const damage = fc.record({
        index: fc.nat({ max: indexes.length - 1 }),
        kind: fc.constantFrom("missing", "cut", "overwritten", "flipped", "stale"),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }),
        from: fc.nat({ max: stale.length - 1 })
      })
      const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(damage, { minLength: 1, maxLength: 3 }), fc.boolean(), async (damages, readOnly) => {
            const files = new Map(pristine)
            for (const d of damages) {
              const name = indexes[d.index]!
              const bytes = files.get(name)
              if (!bytes) continue
              const pos = Math.floor(d.at * bytes.length)
              if (d.kind === "missing") files.delete(name)
              else if (d.kind === "cut") files.set(name, bytes.subarray(0, pos))
              else if (d.kind === "overwritten" || d.kind === "flipped") {
                const changed = Buffer.from(bytes)
                if (d.kind === "flipped") changed[Math.min(pos, changed.length - 1)]! ^= d.bytes[0]! || 1
                else changed.set(d.bytes.subarray(0, changed.length - pos), pos)
                files.set(name, changed)
              } else {
                const replacement = stale[d.from]!.get(name)
                if (replacement) files.set(name, replacement)
                else files.delete(name)
              }
            }
            const dir = restore(files)
            const before = snapshotFiles(dir)
            await runPromise(
              withStore(
                dir,
                (s) =>
                  Effect.gen(function* () {
                    expect(yield* viewOf(s, streams)).toEqual(want)
                    if (readOnly) return
                    // The writer decides appends on the same stream positions as before the damage.
                    const keys = want.byStream["keys"]!.length
                    expect((yield* Effect.flip(s.append("keys", [keyIssued(1)], keys - 2)))._tag).toBe("WrongExpectedRevision")
                    expect((yield* Effect.flip(s.append("node-n2", [newEvent("NodeRetired", { node: "x" })], "no_stream")))._tag).toBe("WrongExpectedRevision")
                    yield* s.append("keys", [keyIssued(1)], keys - 1)
                  }),
                { readOnly, segmentBytes }
              )
            )
            if (readOnly) {
              // A read-only open repairs in memory and writes nothing.
              expect(snapshotFiles(dir)).toEqual(before)
            } else {
              // The writer rewrote every damaged index as it was (they derive from the log alone);
              // only the last segment and its index have grown, by the append.
              const after = snapshotFiles(dir)
              const growing = [...pristine.keys()].slice(-2)
              for (const [name, bytes] of pristine) {
                const now = after.get(name)
                expect([name, growing.includes(name) ? now?.subarray(0, bytes.length) : now]).toEqual([name, bytes])
              }
            }
            fs.rmSync(dir, { recursive: true, force: true })
          }),
          { numRuns: 80 }
        )
      )
    })
  )

  it.live("a subscriber far behind the writer catches up from disk, then follows live appends, without gap or duplicate", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* makeFileEventStore(tmp(), { segmentBytes: 64 << 10 })
        yield* s.append("chain-A", [genesisEvent()], "no_stream")
        yield* Effect.forEach(
          Array.from({ length: 5000 }, (_, i) => i),
          (i) => s.append("keys", [keyIssued(i)], "any"),
          { concurrency: 64, discard: true }
        )
        const total = 5001 + 300
        const follower = yield* s.subscribe(0).pipe(Stream.take(total), Stream.runCollect, Effect.fork)
        yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => i),
          (i) => s.append("keys", [keyIssued(10_000 + i)], "any"),
          { concurrency: 8, discard: true }
        )
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(follower))
        expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i))
        expect(seen).toEqual(yield* logOf(s))
      })
    )
  )
})
