import { crc32 } from "node:zlib"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Runtime, type Scope } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { eventsDir, inspectLogFile, makeFileEventStore, segmentPath, type FileEventStoreOptions } from "../../../adapters/eventstore/file.ts"
import { encodeAppend, frameRecord, HEADER_BYTES, headerChecksum, recordText, type RawRecord } from "../../../adapters/eventstore/file-format.ts"
import type { EventStoreApi } from "../../../domain/ports/event-store.ts"
import { decodeEvent, seal, type Envelope, verifyChain as verifyChainOf } from "../../../domain/ledger/envelope.ts"
import { genesisEnvelope } from "../../../domain/ledger/genesis.ts"
import { newEvent } from "../../../domain/ledger/events.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { logOf } from "../../support/log.ts"
import { lastSegment, logBytes, segmentFiles, snapshotFiles } from "../../support/segment-files.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-file-recovery-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const tmp = () => fs.mkdtempSync(path.join(root, `${n++}-`))

/** Opens the store on `dir` for `f` only: closed (and unlocked) when `f` ends. */
const withStore = <A, E>(dir: string, f: (s: EventStoreApi) => Effect.Effect<A, E, Scope.Scope>, opts: FileEventStoreOptions = {}) =>
  Effect.scoped(Effect.flatMap(makeFileEventStore(dir, opts), f))
const openResult = (dir: string, opts: FileEventStoreOptions = {}) =>
  Effect.scoped(Effect.either(Effect.flatMap(makeFileEventStore(dir, opts), (s) => logOf(s))))

const writeSegment = (dir: string, bytes: Uint8Array) => {
  fs.mkdirSync(path.join(dir, "events"), { recursive: true })
  fs.writeFileSync(segmentPath(dir), bytes)
}
const frame = (env: unknown, continues = false) => frameRecord(Buffer.from(typeof env === "string" ? env : JSON.stringify(env)), continues)

/** The layouts every recovery test runs on: the whole log in one segment, and a segment every append or two. */
const layouts = [
  { name: "one segment", segmentBytes: undefined },
  { name: "small segments", segmentBytes: 400 }
] as const

/** A real log written by the store: genesis, single appends, and a two-event append last. */
const buildLog = (segmentBytes?: number) =>
  Effect.gen(function* () {
    const dir = tmp()
    const envelopes = yield* withStore(
      dir,
      (s) =>
        Effect.gen(function* () {
          yield* s.append("chain-A", [genesisEvent()], "no_stream")
          for (let i = 0; i < 4; i++) yield* s.append("keys", [keyIssued(i)], "any")
          yield* s.append("node-a", [newEvent("NodeRetired", { node: "a" })], "no_stream")
          yield* s.append("node-b", [newEvent("NodeRetired", { node: "b" }), newEvent("NodeRetired", { node: "c" })], "no_stream")
          return yield* logOf(s)
        }),
      { segmentBytes }
    )
    const records = (yield* inspectLogFile(dir)).records
    return { dir, envelopes, records }
  })

/** A copy of a log directory's segments and indexes (not its lock), to damage. */
const copyLog = (from: string) => {
  const dir = tmp()
  fs.mkdirSync(eventsDir(dir))
  for (const [name, bytes] of snapshotFiles(from)) fs.writeFileSync(path.join(eventsDir(dir), name), bytes)
  return dir
}
const fileOf = (dir: string, r: RawRecord) => path.join(eventsDir(dir), r.segment)
/** Cut the log at byte `at` of the segment holding `r`: that segment ends there, later ones are gone. */
const cutLog = (dir: string, r: RawRecord, at: number) => {
  for (const f of segmentFiles(dir)) if (path.basename(f) > r.segment) for (const g of [f, f.replace(/\.seg$/, ".idx")]) fs.rmSync(g, { force: true })
  fs.truncateSync(fileOf(dir, r), at)
}
const flipByte = (file: string, pos: number, xor: number) => {
  const bytes = fs.readFileSync(file)
  bytes[pos]! ^= xor
  fs.writeFileSync(file, bytes)
}

const sealAfter = (prev: Envelope, fields: { stream: string; type: string; version: number; data: unknown }) =>
  seal({ seq: prev.seq + 1, prev: prev.hash, at: "2025-02-01T00:00:00.000Z", ...fields })

const failureOf = (r: Either.Either<unknown, { _tag: string; seq?: number; message: string }>) => {
  expect(Either.isLeft(r)).toBe(true)
  const e = (r as Either.Left<{ _tag: string; seq?: number; message: string }, unknown>).left
  expect(e._tag).toBe("StoreFailure")
  return e
}

const verifyChain = (log: ReadonlyArray<Envelope>): boolean => Either.isRight(verifyChainOf(log))

/** The log in `dir` is refused at `seq` by a read-only open and by a writer (open, or reading it whole), and nothing of it changes. */
const refusedAt = (dir: string, seq: number, reason: string | RegExp) =>
  Effect.gen(function* () {
    const before = logBytes(dir)
    for (const readOnly of [true, false]) {
      const e = failureOf(yield* openResult(dir, { readOnly }))
      expect(e.seq).toBe(seq)
      expect(e.message).toMatch(reason)
    }
    expect(Buffer.compare(logBytes(dir), before)).toBe(0)
  })

describe.each(layouts)("file event store on $name: torn tails", ({ segmentBytes }) => {
  it.effect("the records are framed as documented", () =>
    Effect.gen(function* () {
      const { dir, records, envelopes } = yield* buildLog(segmentBytes)
      expect(records.length).toBe(envelopes.length)
      const r0 = records[0]!
      const bytes = fs.readFileSync(fileOf(dir, r0))
      const len = bytes.readUInt32LE(0)
      expect(len).toBe(r0.bytes - HEADER_BYTES)
      expect(JSON.parse(bytes.subarray(HEADER_BYTES, HEADER_BYTES + len).toString("utf8"))).toEqual(envelopes[0])
      // The two events of the last append: the first is flagged as continued, the last is not.
      expect(records.map((r) => r.continues)).toEqual(envelopes.map((_, i) => i === envelopes.length - 2))
      // An append never spans segments.
      expect(records.at(-2)!.segment).toBe(records.at(-1)!.segment)
    })
  )

  it.effect("a cut at every length of the last append: a writer truncates it, a reader ignores it, earlier events stay", () =>
    Effect.gen(function* () {
      const { dir: pristine, records, envelopes } = yield* buildLog(segmentBytes)
      const first = records.at(-2)!
      const end = first.offset + first.bytes + records.at(-1)!.bytes
      const kept = envelopes.slice(0, -2)
      for (let cut = first.offset + 1; cut < end; cut++) {
        const dir = copyLog(pristine)
        cutLog(dir, first, cut)
        const read = yield* withStore(dir, (s) => logOf(s), { readOnly: true })
        expect(read).toEqual(kept)
        expect(fs.statSync(fileOf(dir, first)).size).toBe(cut)
        const written = yield* withStore(
          dir,
          (s) =>
            Effect.gen(function* () {
              const all = yield* logOf(s)
              // The chain continues from the last whole append.
              const r = yield* s.append("keys", [keyIssued(77)], "any")
              expect(r.head.seq).toBe(kept.length)
              return all
            }),
          { segmentBytes }
        )
        expect(written).toEqual(kept)
        const reopened = yield* withStore(dir, (s) => logOf(s), { readOnly: true })
        expect(reopened.length).toBe(kept.length + 1)
        expect(verifyChain(reopened)).toBe(true)
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  )

  it.effect("a single-record last append cut at every length is dropped alone", () =>
    Effect.gen(function* () {
      const { dir: pristine, records, envelopes } = yield* buildLog(segmentBytes)
      // Drop the two-event append so that the last record is a whole single append.
      const single = records.at(-3)!
      for (let cut = single.offset; cut < single.offset + single.bytes; cut++) {
        const dir = copyLog(pristine)
        cutLog(dir, single, cut)
        expect(yield* withStore(dir, (s) => logOf(s), { segmentBytes })).toEqual(envelopes.slice(0, -3))
        expect(fs.statSync(fileOf(dir, single)).size).toBe(single.offset)
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  )

  it.effect("an append whose records are whole but whose last record is missing is an incomplete tail", () =>
    Effect.gen(function* () {
      const { dir: pristine, records, envelopes } = yield* buildLog(segmentBytes)
      const dir = copyLog(pristine)
      cutLog(dir, records.at(-1)!, records.at(-1)!.offset)
      expect(yield* withStore(dir, (s) => logOf(s))).toEqual(envelopes.slice(0, -2))
      expect(fs.statSync(fileOf(dir, records.at(-1)!)).size).toBe(records.at(-2)!.offset)
    })
  )

  it.effect("a zero-filled tail (the file grew, the data never landed) is an incomplete tail", () =>
    Effect.gen(function* () {
      const { dir: pristine, envelopes } = yield* buildLog(segmentBytes)
      const dir = copyLog(pristine)
      const last = lastSegment(dir)
      const size = fs.statSync(last).size
      fs.appendFileSync(last, Buffer.alloc(4096))
      expect(yield* withStore(dir, (s) => logOf(s))).toEqual(envelopes)
      expect(fs.statSync(last).size).toBe(size)
    })
  )
})

describe.each(layouts)("file event store on $name: a changed byte is refused, naming the seq", ({ segmentBytes }) => {
  it.effect("a payload byte changed in the middle", () =>
    Effect.gen(function* () {
      const { dir: pristine, records } = yield* buildLog(segmentBytes)
      const dir = copyLog(pristine)
      flipByte(fileOf(dir, records[2]!), records[2]!.offset + HEADER_BYTES + 10, 0x01)
      yield* refusedAt(dir, 2, /payload checksum mismatch/)
    })
  )

  it.effect("a changed length in the last record's header is corruption, not a torn tail", () =>
    Effect.gen(function* () {
      const { dir: pristine, records } = yield* buildLog(segmentBytes)
      const dir = copyLog(pristine)
      const last = records.at(-1)!
      const file = fileOf(dir, last)
      const bytes = fs.readFileSync(file)
      bytes.writeUInt32LE(bytes.readUInt32LE(last.offset) + 100, last.offset)
      fs.writeFileSync(file, bytes)
      yield* refusedAt(dir, last.seq, /header checksum mismatch/)
    })
  )

  it.effect("any single changed byte of any segment is refused, naming the record that holds it (property)", () =>
    Effect.gen(function* () {
      const { dir: pristine, records } = yield* buildLog(segmentBytes)
      const files = segmentFiles(pristine)
      const sizes = files.map((f) => fs.statSync(f).size)
      const total = sizes.reduce((a, b) => a + b, 0)
      // fast-check's async property takes Promises: each case's open runs on this test's runtime.
      const runtime = yield* Effect.runtime<never>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.nat({ max: total - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
            let i = 0
            let pos = at
            while (pos >= sizes[i]!) pos -= sizes[i++]!
            const segment = path.basename(files[i]!)
            const holder = records.find((r) => r.segment === segment && r.offset <= pos && pos < r.offset + r.bytes)!
            const dir = copyLog(pristine)
            flipByte(path.join(eventsDir(dir), segment), pos, xor)
            await Runtime.runPromise(runtime)(refusedAt(dir, holder.seq, /corrupted event log/))
            fs.rmSync(dir, { recursive: true, force: true })
          }),
          { numRuns: 100 }
        )
      )
    })
  )
})

describe("file event store: crafted records are refused, naming the seq", () => {
  const refused = (bytes: Uint8Array, seq: number, reason: string | RegExp) =>
    Effect.gen(function* () {
      const dir = tmp()
      writeSegment(dir, bytes)
      yield* refusedAt(dir, seq, reason)
    })

  it.effect("bad JSON with a correct checksum", () =>
    Effect.gen(function* () {
      const g = genesisEnvelope()
      yield* refused(Buffer.concat([frame(g), frame('{"seq": 1, "stream": ')]), 1, /seq 1: .*bad JSON/)
    })
  )

  it.effect("a payload that is not UTF-8, with a correct checksum", () =>
    Effect.gen(function* () {
      const g = genesisEnvelope()
      yield* refused(Buffer.concat([frame(g), frameRecord(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false)]), 1, /not UTF-8/)
    })
  )

  it.effect("JSON that is not an envelope", () =>
    Effect.gen(function* () {
      const g = genesisEnvelope()
      const { hash: _hash, ...noHash } = sealAfter(g, { stream: "keys", type: "ApiKeyIssued", version: 1, data: {} })
      yield* refused(Buffer.concat([frame(g), frame(noHash)]), 1, /bad envelope/)
      yield* refused(Buffer.concat([frame(g), frame({ ...sealAfter(g, { stream: "keys", type: "X", version: 1, data: {} }), extra: 1 })]), 1, /bad envelope/)
    })
  )

  it.effect("a broken chain: wrong prev, altered data with a recomputed checksum, swapped and missing records", () =>
    Effect.gen(function* () {
      const { envelopes } = yield* buildLog()
      const records = (envs: ReadonlyArray<unknown>) => Buffer.concat(envs.map((e) => frame(e)))
      const e = envelopes.slice(0, 5)
      yield* refused(records([e[0], e[1], { ...e[2]!, prev: e[0]!.hash }, e[3]]), 2, /prev does not match/)
      yield* refused(records([e[0], e[1], e[2], { ...e[3]!, data: { ...(e[3]!.data as object), role: "admin" } }]), 3, /hash mismatch/)
      yield* refused(records([e[0], e[2], e[1]]), 1, /expected seq 1, found 2/)
      yield* refused(records([e[0], e[1], e[3]]), 2, /expected seq 2, found 3/)
    })
  )

  it.effect("a seq 0 that is not the shared genesis, even if self-consistent", () =>
    Effect.gen(function* () {
      const g = genesisEnvelope()
      const fake = seal({ ...g, data: { ...(g.data as object), title: "Another covenant" } })
      yield* refused(frame(fake), 0, /genesis/)
    })
  )
})

describe("file event store: events the catalog does not know open, and fail to decode by seq", () => {
  it.effect("an unknown type and an unsupported version, with correct checksums and chain", () =>
    Effect.gen(function* () {
      const g = genesisEnvelope()
      const unknown = sealAfter(g, { stream: "keys", type: "NoSuchEvent", version: 1, data: { x: 1 } })
      const future = sealAfter(unknown, { stream: "keys", type: "ApiKeyIssued", version: 2, data: { keyHash: "0".repeat(64), role: "node" } })
      const dir = tmp()
      writeSegment(dir, Buffer.concat([frame(g), frame(unknown), frame(future)]))
      const all = yield* withStore(dir, (s) => logOf(s))
      expect(all).toEqual([g, unknown, future])
      const d1 = decodeEvent(all[1]!)
      const d2 = decodeEvent(all[2]!)
      expect(Either.isLeft(d1) && d1.left).toMatchObject({ _tag: "MalformedEvent", seq: 1 })
      expect(Either.isLeft(d2) && d2.left).toMatchObject({ _tag: "MalformedEvent", seq: 2 })
      expect(Either.isLeft(d2) && d2.left.reason).toMatch(/version 2/)
    })
  )
})

describe.each(layouts)("inspectLogFile on $name", ({ segmentBytes }) => {
  it.effect("lists the raw records and says where and why reading stopped", () =>
    Effect.gen(function* () {
      const { dir: pristine, records, envelopes } = yield* buildLog(segmentBytes)
      expect(records.map((r) => JSON.parse(r.text))).toEqual(envelopes)
      expect(records.map((r) => r.seq)).toEqual(envelopes.map((e) => e.seq))
      const dir = copyLog(pristine)
      flipByte(fileOf(dir, records[3]!), records[3]!.offset + HEADER_BYTES, 0xff)
      const seen = yield* inspectLogFile(dir)
      expect(seen.records).toEqual(records.slice(0, 3))
      expect(seen.stop).toMatchObject({ kind: "corrupt", seq: 3, segment: records[3]!.segment, offset: records[3]!.offset })
      const cut = copyLog(pristine)
      fs.truncateSync(lastSegment(cut), fs.statSync(lastSegment(cut)).size - 1)
      expect((yield* inspectLogFile(cut)).stop).toMatchObject({ kind: "torn", seq: records.length - 1 })
      expect(yield* inspectLogFile(path.join(dir, "none"))).toEqual({ size: 0, records: [], stop: undefined })
    })
  )
})

describe("file event store: record framing", () => {
  it("encodeAppend flags every record of an append but the last", () => {
    const g = genesisEnvelope()
    const e1 = sealAfter(g, { stream: "keys", type: "T", version: 1, data: 1 })
    const [a, b] = encodeAppend([g, e1])
    expect(a!.readUInt32LE(0) >>> 31).toBe(1)
    expect(b!.readUInt32LE(0) >>> 31).toBe(0)
  })

  it("a record's text is its envelope's JSON.stringify, whatever its strings and data hold (property)", () => {
    const text = fc.string({ unit: "binary" })
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          stream: text,
          type: text,
          version: fc.integer({ min: 1 }),
          at: text,
          data: fc.option(fc.jsonValue(), { nil: undefined }),
          prev: text,
          hash: text
        }),
        (e) => {
          expect(recordText(e)).toBe(JSON.stringify(e))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a record header's checksum is zlib's crc32 of its first 8 bytes, wherever they lie (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 64 }), fc.nat(), (bytes, at) => {
        const pos = at % (bytes.length - 7)
        expect(headerChecksum(bytes, pos)).toBe(crc32(bytes.subarray(pos, pos + 8)))
      }),
      { numRuns: 300 }
    )
  })
})
