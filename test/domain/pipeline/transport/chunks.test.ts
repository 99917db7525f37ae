import fc from "fast-check"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { Reassembly, splitChunks, type Accepted, type Chunk } from "../../../../domain/pipeline/transport/chunks.ts"
import { decodeChunk, encodeChunk } from "../../../../domain/pipeline/transport/wire.ts"

/** A payload, a chunk size, and an arrival order in which every chunk comes at least once, some more than once. */
const arrivals = fc
  .record({ payload: fc.uint8Array({ maxLength: 4096 }), chunkBytes: fc.integer({ min: 1, max: 700 }) })
  .chain(({ payload, chunkBytes }) => {
    const total = Math.max(1, Math.ceil(payload.length / chunkBytes))
    return fc
      .tuple(fc.shuffledSubarray([...Array(total).keys()], { minLength: total, maxLength: total }), fc.array(fc.nat(total - 1), { maxLength: 2 * total }), fc.array(fc.nat(), { maxLength: 2 * total }))
      .map(([order, extra, places]) => {
        // Duplicates go anywhere: before, among or after the first arrival of their chunk.
        const sequence = [...order]
        extra.forEach((i, k) => sequence.splice((places[k] ?? 0) % (sequence.length + 1), 0, i))
        return { payload, chunkBytes, sequence }
      })
  })

const feed = (chunks: ReadonlyArray<Chunk>, sequence: ReadonlyArray<number>) => {
  const r = Reassembly.start(chunks[0]!.header)
  return sequence.map((i) => Either.getOrThrow(r.accept(chunks[i]!)))
}

describe("a tensor's chunks and their reassembly", () => {
  it("reassemble to the exact payload whatever the order and however many duplicates: complete once, when the last missing chunk arrives, and a duplicate changes nothing (property)", () =>
    fc.assert(
      fc.property(arrivals, ({ payload, chunkBytes, sequence }) => {
        const chunks = splitChunks("t-1", payload, chunkBytes, "none")
        expect(chunks.every((c) => c.body.length <= chunkBytes)).toBe(true)
        const outcomes = feed(chunks, sequence)
        const seen = new Set<number>()
        outcomes.forEach((o: Accepted, k) => {
          const i = sequence[k]!
          const fresh = !seen.has(i)
          seen.add(i)
          expect(o._tag).toBe(!fresh ? "Duplicate" : seen.size === chunks.length ? "Complete" : "Stored")
          if (o._tag === "Complete") expect(o.payload).toEqual(payload)
        })
      }),
      { numRuns: 500 }
    ))

  it("a chunk whose bytes changed on the way is refused for sending again and stored nowhere; the true chunk then completes the payload (property)", () =>
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 2048 }), fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), (payload, chunkBytes, which, at) => {
        const chunks = splitChunks("t-2", payload, chunkBytes, "gzip")
        const i = which % chunks.length
        const bad = Uint8Array.from(chunks[i]!.body)
        bad[at % bad.length]! ^= 0x01
        const r = Reassembly.start(chunks[0]!.header)
        const refused = r.accept({ header: chunks[i]!.header, body: bad })
        expect(Either.isLeft(refused) && refused.left.retry).toBe(true)
        expect(r.held).toBe(0)
        const last = chunks.map((c) => Either.getOrThrow(r.accept(c))).at(-1)!
        expect(last._tag === "Complete" && last.payload).toEqual(payload)
      }),
      { numRuns: 300 }
    ))

  it("a chunk that disagrees with its transfer (another count, size or whole hash) or lies past its total is refused for good", () => {
    const chunks = splitChunks("t-3", Uint8Array.from([1, 2, 3, 4, 5]), 2, "none")
    const r = Reassembly.start(chunks[0]!.header)
    for (const header of [{ ...chunks[1]!.header, total: 4 }, { ...chunks[1]!.header, size: 6 }, { ...chunks[1]!.header, whole: "0".repeat(64) }, { ...chunks[1]!.header, encoding: "gzip" as const }]) {
      const refused = r.accept({ header, body: chunks[1]!.body })
      expect(Either.isLeft(refused) && !refused.left.retry).toBe(true)
    }
    const beyond = Reassembly.start({ ...chunks[0]!.header, total: 3 })
    const past = beyond.accept({ header: { ...chunks[2]!.header, index: 3 }, body: chunks[2]!.body })
    expect(Either.isLeft(past) && !past.left.retry).toBe(true)
    expect(r.held).toBe(0)
  })

  it("chunks go over the wire as frames and come back equal; a message that is not a chunk is refused, naming what a chunk is (property)", () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), fc.integer({ min: 1, max: 200 }), (payload, chunkBytes) => {
        for (const c of splitChunks("t-4", payload, chunkBytes, "none")) expect(Either.getOrThrow(decodeChunk(encodeChunk(c)))).toEqual({ header: c.header, body: c.body })
        const junk = decodeChunk(payload)
        if (Either.isRight(junk)) expect(junk.right.header.transfer).toBeDefined()
        else expect(junk.left.retry).toBe(false)
      })
    ))
})
