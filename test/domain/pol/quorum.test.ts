import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { decideRound, quorumOf, type Vote } from "../../../domain/pol/quorum.ts"
import { defaultPoLSettings, figuresOf, shortfall } from "../../../domain/pol/evaluation.ts"

/** n validators, fewer than a third of them byzantine, voting in any order, the byzantine ones however they like (or not at all). */
const round = fc.integer({ min: 1, max: 13 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    byzantine: fc.integer({ min: 0, max: Math.ceil(n / 3) - 1 }),
    byzantineVotes: fc.array(fc.record({ who: fc.nat({ max: n - 1 }), passes: fc.boolean() }), { maxLength: 3 * n }),
    order: fc.array(fc.nat(), { minLength: 4 * n, maxLength: 4 * n }),
    genuine: fc.boolean()
  })
)

describe("a round's quorum", () => {
  it("fewer than a third of the validators, voting arbitrarily, neither force an accept nor block a genuine improvement (property)", () =>
    fc.assert(
      fc.property(round, ({ n, byzantine, byzantineVotes, order, genuine }) => {
        const registered = new Set(Array.from({ length: n }, (_, i) => `v${i}`))
        // The first `byzantine` validators are the faulty ones; the honest vote what they measured.
        const honest: Vote[] = Array.from({ length: n - byzantine }, (_, i) => ({ validator: `v${byzantine + i}`, passes: genuine }))
        const faulty: Vote[] = byzantine === 0 ? [] : byzantineVotes.map((v) => ({ validator: `v${v.who % byzantine}`, passes: v.passes }))
        // Strangers' votes never count.
        const strangers: Vote[] = [{ validator: "mallory", passes: !genuine }]
        const all = [...honest, ...faulty, ...strangers].map((v, i) => ({ v, k: order[i % order.length]! })).sort((a, b) => a.k - b.k).map((x) => x.v)
        for (let i = 0; i <= all.length; i++) {
          const d = decideRound(registered, all.slice(0, i), false)
          if (!genuine) expect(d.kind).not.toBe("accepted")
          if (genuine) expect(d.kind).not.toBe("rejected")
        }
        expect(decideRound(registered, all, true).kind).toBe(genuine ? "accepted" : "rejected")
      }),
      { numRuns: 500 }
    ))

  it("needs two thirds of the registered validators, each counted once; the deadline rejects an undecided round", () => {
    const three = new Set(["a", "b", "c"])
    expect(quorumOf(3)).toBe(2)
    expect(quorumOf(4)).toBe(3)
    expect(decideRound(three, [{ validator: "a", passes: true }, { validator: "a", passes: true }], false)).toMatchObject({ kind: "pending", for: 1 })
    expect(decideRound(three, [{ validator: "a", passes: true }, { validator: "b", passes: true }], false)).toMatchObject({ kind: "accepted", for: 2 })
    expect(decideRound(three, [{ validator: "a", passes: false }, { validator: "b", passes: false }], false)).toMatchObject({ kind: "rejected" })
    expect(decideRound(three, [{ validator: "a", passes: true }], true)).toMatchObject({ kind: "rejected", reason: expect.stringContaining("no quorum before the deadline") })
    expect(decideRound(new Set(), [], false)).toMatchObject({ kind: "rejected" })
  })

  it("a validator's figures pass only with the margin and the share of batches won", () => {
    const s = defaultPoLSettings
    expect(shortfall(figuresOf([2, 2, 2, 2], [1.9, 1.9, 1.9, 1.9]), s)).toBeUndefined()
    expect(shortfall(figuresOf([2, 2, 2, 2], [1.99, 1.99, 1.99, 1.99]), s)).toMatch(/below 1.00%/)
    // A mean carried by one lucky batch.
    expect(shortfall(figuresOf([2, 2, 2, 2], [1.5, 2.01, 2.01, 2.01]), s)).toMatch(/better on 1 of 4 batches/)
    expect(shortfall(figuresOf([2, 2], [NaN, 1]), s)).toBe("a loss is not finite")
    expect(() => figuresOf([1], [1, 2])).toThrow(RangeError)
  })
})
