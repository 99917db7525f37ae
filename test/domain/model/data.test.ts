import { describe, expect, it } from "vitest"
import { sampleBatch, sequentialBatches, textBytes } from "../../../domain/model/data.ts"
import { makePrng } from "../../../domain/model/prng.ts"

const data = textBytes("abcdefghijklmnopqrstuvwxyz")

describe("training data", () => {
  it("sampled windows: targets are the inputs shifted by one byte, drawn reproducibly from the seed", () => {
    const b = sampleBatch(data, 3, 5, makePrng(4))
    expect([b.batch, b.seq, b.tokens.length, b.targets.length]).toEqual([3, 5, 15, 15])
    for (let i = 0; i < 15; i++) expect(b.targets[i]).toBe(b.tokens[i]! + 1)
    expect(sampleBatch(data, 3, 5, makePrng(4))).toEqual(b)
    expect(sampleBatch(data, 3, 5, makePrng(5))).not.toEqual(b)
    expect(() => sampleBatch(data, 1, 26, makePrng(1))).toThrow(RangeError)
  })

  it("sequential windows cover the data without overlap; the last batch may be smaller", () => {
    const bs = sequentialBatches(data, 2, 4) // 25 targets → 6 windows of 4
    expect(bs.map((b) => b.batch)).toEqual([2, 2, 2])
    expect(bs.flatMap((b) => Array.from(b.tokens))).toEqual(Array.from(data.subarray(0, 24)))
    expect(bs.flatMap((b) => Array.from(b.targets))).toEqual(Array.from(data.subarray(1, 25)))
    expect(sequentialBatches(data, 4, 4).map((b) => b.batch)).toEqual([4, 2])
  })
})
