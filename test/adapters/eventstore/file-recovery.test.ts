import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Runtime, type Scope } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { inspectLogFile, makeFileEventStore, segmentPath, type FileEventStoreOptions } from "../../../adapters/eventstore/file.ts"
import { encodeAppend, frameRecord, HEADER_BYTES } from "../../../adapters/eventstore/file-format.ts"
import type { EventStoreApi } from "../../../domain/ports/event-store.ts"
import { decodeEvent, seal, type Envelope, verifyChain as verifyChainOf } from "../../../domain/ledger/envelope.ts"
import { genesisEnvelope } from "../../../domain/ledger/genesis.ts"
import { newEvent } from "../../../domain/ledger/events.ts"
import { genesisEvent, keyIssued } from "../../support/events.ts"
import { logOf } from "../../support/log.ts"

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

/** A real log written by the store: genesis, single appends, and a two-event append last. */
const buildLog = Effect.gen(function* () {
  const dir = tmp()
  const envelopes = yield* withStore(dir, (s) =>
    Effect.gen(function* () {
      yield* s.append("chain-A", [genesisEvent()], "no_stream")
      for (let i = 0; i < 4; i++) yield* s.append("keys", [keyIssued(i)], "any")
      yield* s.append("node-a", [newEvent("NodeRetired", { node: "a" })], "no_stream")
      yield* s.append("node-b", [newEvent("NodeRetired", { node: "b" }), newEvent("NodeRetired", { node: "c" })], "no_stream")
      return yield* logOf(s)
    })
  )
  const bytes = fs.readFileSync(segmentPath(dir))
  const records = (yield* inspectLogFile(dir)).records
  return { envelopes, bytes, records }
})

const sealAfter = (prev: Envelope, fields: { stream: string; type: string; version: number; data: unknown }) =>
  seal({ seq: prev.seq + 1, prev: prev.hash, at: "2025-02-01T00:00:00.000Z", ...fields })

const failureOf = (r: Either.Either<unknown, { _tag: string; seq?: number; message: string }>) => {
  expect(Either.isLeft(r)).toBe(true)
  const e = (r as Either.Left<{ _tag: string; seq?: number; message: string }, unknown>).left
  expect(e._tag).toBe("StoreFailure")
  return e
}

const verifyChain = (log: ReadonlyArray<Envelope>): boolean => Either.isRight(verifyChainOf(log))

describe("file event store: torn tails", () => {
  it.effect("the records are framed as documented", () =>
    Effect.gen(function* () {
      const { bytes, records, envelopes } = yield* buildLog
      expect(records.length).toBe(envelopes.length)
      const r0 = records[0]!
      const len = bytes.readUInt32LE(0)
      expect(len).toBe(r0.bytes - HEADER_BYTES)
      expect(JSON.parse(bytes.subarray(HEADER_BYTES, HEADER_BYTES + len).toString("utf8"))).toEqual(envelopes[0])
      // The two events of the last append: the first is flagged as continued, the last is not.
      expect(records.map((r) => r.continues)).toEqual(envelopes.map((_, i) => i === envelopes.length - 2))
    })
  )

  it.effect("a cut at every length of the last append: a writer truncates it, a reader ignores it, earlier events stay", () =>
    Effect.gen(function* () {
      const { bytes, records, envelopes } = yield* buildLog
      const lastAppendStart = records[records.length - 2]!.offset
      const kept = envelopes.slice(0, -2)
      for (let cut = lastAppendStart + 1; cut < bytes.length; cut++) {
        const dir = tmp()
        writeSegment(dir, bytes.subarray(0, cut))
        const read = yield* withStore(dir, (s) => logOf(s), { readOnly: true })
        expect(read).toEqual(kept)
        expect(fs.statSync(segmentPath(dir)).size).toBe(cut)
        const written = yield* withStore(dir, (s) =>
          Effect.gen(function* () {
            const all = yield* logOf(s)
            // The chain continues from the last whole append.
            const r = yield* s.append("keys", [keyIssued(77)], "any")
            expect(r.head.seq).toBe(kept.length)
            return all
          })
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
      const { bytes, records, envelopes } = yield* buildLog
      // Drop the two-event append so that the last record is a whole single append.
      const end = records[records.length - 2]!.offset
      const start = records[records.length - 3]!.offset
      for (let cut = start; cut < end; cut++) {
        const dir = tmp()
        writeSegment(dir, bytes.subarray(0, cut))
        expect(yield* withStore(dir, (s) => logOf(s))).toEqual(envelopes.slice(0, -3))
        expect(fs.statSync(segmentPath(dir)).size).toBe(start)
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  )

  it.effect("an append whose records are whole but whose last record is missing is an incomplete tail", () =>
    Effect.gen(function* () {
      const { bytes, records, envelopes } = yield* buildLog
      const dir = tmp()
      writeSegment(dir, bytes.subarray(0, records[records.length - 1]!.offset))
      expect(yield* withStore(dir, (s) => logOf(s))).toEqual(envelopes.slice(0, -2))
      expect(fs.statSync(segmentPath(dir)).size).toBe(records[records.length - 2]!.offset)
    })
  )

  it.effect("a zero-filled tail (the file grew, the data never landed) is an incomplete tail", () =>
    Effect.gen(function* () {
      const { bytes, envelopes } = yield* buildLog
      const dir = tmp()
      writeSegment(dir, Buffer.concat([bytes, Buffer.alloc(4096)]))
      expect(yield* withStore(dir, (s) => logOf(s))).toEqual(envelopes)
      expect(fs.statSync(segmentPath(dir)).size).toBe(bytes.length)
    })
  )
})

describe("file event store: corruption is refused, naming the seq", () => {
  const refused = (bytes: Uint8Array, seq: number, reason: string | RegExp) =>
    Effect.gen(function* () {
      const dir = tmp()
      writeSegment(dir, bytes)
      for (const readOnly of [true, false]) {
        const e = failureOf(yield* openResult(dir, { readOnly }))
        expect(e.seq).toBe(seq)
        expect(e.message).toMatch(reason)
      }
      // A refused open changes nothing.
      expect(Buffer.compare(fs.readFileSync(segmentPath(dir)), Buffer.from(bytes))).toBe(0)
    })

  it.effect("a payload byte changed in the middle", () =>
    Effect.gen(function* () {
      const { bytes, records } = yield* buildLog
      const bad = Buffer.from(bytes)
      bad[records[2]!.offset + HEADER_BYTES + 10]! ^= 0x01
      yield* refused(bad, 2, /payload checksum mismatch/)
    })
  )

  it.effect("a changed length in the last record's header is corruption, not a torn tail", () =>
    Effect.gen(function* () {
      const { bytes, records } = yield* buildLog
      const last = records[records.length - 1]!
      const bad = Buffer.from(bytes)
      bad.writeUInt32LE(bad.readUInt32LE(last.offset) + 100, last.offset)
      yield* refused(bad, last.seq, /header checksum mismatch/)
    })
  )

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
      const { envelopes } = yield* buildLog
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

describe("file event store: any single changed byte is detected (property)", () => {
  it.effect("never opens as a valid but different log", () =>
    Effect.gen(function* () {
      const { bytes, envelopes } = yield* buildLog
      const dir = tmp()
      // fast-check's async property takes Promises: each case's open runs on this test's runtime.
      const runtime = yield* Effect.runtime<never>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (pos, xor) => {
            const bad = Buffer.from(bytes)
            bad[pos]! ^= xor
            writeSegment(dir, bad)
            const r = await Runtime.runPromise(runtime)(openResult(dir))
            if (Either.isLeft(r)) {
              expect(r.left._tag).toBe("StoreFailure")
              expect(typeof (r.left as { seq?: number }).seq).toBe("number")
              // It names the record that holds the changed byte.
              expect(envelopes[(r.left as { seq: number }).seq]).toBeDefined()
            } else {
              expect(r.right).not.toEqual(envelopes)
              expect(verifyChain(r.right)).toBe(false)
            }
            // Refused, so nothing was truncated or rewritten.
            expect(Buffer.compare(fs.readFileSync(segmentPath(dir)), bad)).toBe(0)
          }),
          { numRuns: 200 }
        )
      )
    })
  )
})

describe("inspectLogFile", () => {
  it.effect("lists the raw records and says where and why reading stopped", () =>
    Effect.gen(function* () {
      const { bytes, records, envelopes } = yield* buildLog
      expect(records.map((r) => JSON.parse(r.text))).toEqual(envelopes)
      const dir = tmp()
      const bad = Buffer.from(bytes)
      bad[records[3]!.offset + HEADER_BYTES]! ^= 0xff
      writeSegment(dir, bad)
      const seen = yield* inspectLogFile(dir)
      expect(seen.records.length).toBe(3)
      expect(seen.stop).toMatchObject({ kind: "corrupt", seq: 3, offset: records[3]!.offset })
      writeSegment(dir, bytes.subarray(0, bytes.length - 1))
      expect((yield* inspectLogFile(dir)).stop).toMatchObject({ kind: "torn", seq: records.length - 1 })
      expect(yield* inspectLogFile(path.join(dir, "none"))).toEqual({ size: 0, records: [], stop: undefined })
    })
  )

  it("encodeAppend flags every record of an append but the last", () => {
    const g = genesisEnvelope()
    const e1 = sealAfter(g, { stream: "keys", type: "T", version: 1, data: 1 })
    const [a, b] = encodeAppend([g, e1])
    expect(a!.readUInt32LE(0) >>> 31).toBe(1)
    expect(b!.readUInt32LE(0) >>> 31).toBe(0)
  })
})
