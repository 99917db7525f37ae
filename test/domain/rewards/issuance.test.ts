import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { replay } from "../../../domain/ledger/audit.ts"
import { newEvent, type EventData, type NewEvent } from "../../../domain/ledger/events.ts"
import { GENESIS_AT } from "../../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { BalancesProjection, type BalancesState } from "../../../domain/projections/balances.ts"
import { BASE_UNITS_PER_BLY } from "../../../domain/rewards/inference.ts"
import { capOf, epochAt, issuable, payRewards, rewardEpoch, type IssuanceSchedule, type Owed } from "../../../domain/rewards/issuance.ts"
import { extendLog, sealLog } from "../../support/decider-spec.ts"
import { testTrust } from "../../support/ledger.ts"
import { earnLearningReward } from "../../support/rewards.ts"

/** A schedule small enough for rewards to reach its caps: epochs of a second, 1,000 units, halving every third. */
const tiny: IssuanceSchedule = { epochMs: 1000, initial: 1000n, halvingEvery: 3 }
const origin = Date.parse(GENESIS_AT)

const owedArb = fc.array(fc.record({ to: fc.constantFrom("a", "b", "c"), amount: fc.bigInt({ min: 0n, max: 700n }), kind: fc.constantFrom("inference" as const, "learning" as const), cause: fc.string({ minLength: 1, maxLength: 4 }) }), { maxLength: 4 })
/** Payments at moments that mostly move on, sometimes stand still, and sometimes step back (a clock set back). */
const stepsArb = fc.array(fc.record({ owed: owedArb, dt: fc.integer({ min: -1500, max: 2500 }) }), { maxLength: 30 })

describe("BLY issuance", () => {
  it("no epoch issues past its cap; each payment is the lesser of what it earned and what its epoch had left; epochs never go back; the replay's check agrees with each payment (property)", () =>
    fc.assert(
      fc.property(stepsArb, (steps) => {
        let s: BalancesState = BalancesProjection.initial()
        let now = origin
        let lastEpoch = 0
        // The log's time: the latest its events were recorded at, whatever the clock did since.
        let reached = 0
        for (const { owed, dt } of steps) {
          now = Math.max(origin, now + dt)
          const events = payRewards(tiny, s, owed as ReadonlyArray<Owed>, now)
          reached = Math.max(reached, epochAt(tiny, now))
          expect(events).toHaveLength(owed.length)
          for (const [i, e] of events.entries()) {
            const d = e.data as EventData<"RewardPaid">
            const check = rewardEpoch(tiny, s, d, reached)
            expect("left" in check, "problem" in check ? check.problem : "").toBe(true)
            const left = (check as { left: bigint }).left
            expect(BigInt(d.amount)).toBe(owed[i]!.amount < left ? owed[i]!.amount : left)
            expect(d.epoch).toBeGreaterThanOrEqual(lastEpoch)
            expect(d.epoch).toBeLessThanOrEqual(reached)
            lastEpoch = d.epoch
            s = BalancesProjection.evolve(s, e as never)
          }
        }
        for (const [epoch, issued] of s.issued) expect(issued <= capOf(tiny, epoch)).toBe(true)
        expect([...s.issued.values()].reduce((a, b) => a + b, 0n)).toBe(s.supply)
      }),
      { numRuns: 300 }
    ))

  it("the cap halves every halvingEvery epochs, and what is left never goes below nothing", () => {
    expect([0, 2, 3, 5, 6, 9].map((e) => capOf(tiny, e))).toEqual([1000n, 1000n, 500n, 500n, 250n, 125n])
    expect(capOf(tiny, 3 * 300)).toBe(0n)
    expect(epochAt(tiny, "not a time")).toBe(0)
    const s = BalancesProjection.evolve(BalancesProjection.initial(), { type: "RewardPaid", data: { to: "a", amount: "900", kind: "inference", cause: "x", epoch: 3 } } as never)
    expect(issuable(tiny, s, 3)).toBe(0n)
  })

  describe("a replay holds the log's rewards to the schedule", () => {
    // Two BLY an epoch; each learning reward below earns 1.5 BLY (150 basis points).
    const schedule: IssuanceSchedule = { epochMs: 86_400_000, initial: 2n * BASE_UNITS_PER_BLY, halvingEvery: 1000 }
    const at = "2026-01-01T00:00:00.000Z"
    const epoch = epochAt(schedule, at)
    const registered = new Set<string>()
    const first = earnLearningReward(sha256Hex("earner"), 150, 1, registered)
    const second = earnLearningReward(sha256Hex("earner"), 150, 2, registered)
    /** The events with their learning reward paid as `amount` in `paidIn`. */
    const paying = (events: ReadonlyArray<readonly [string, NewEvent]>, amount: bigint, paidIn: number) =>
      events.map(([stream, e]) => (e.type === "RewardPaid" ? ([stream, newEvent("RewardPaid", { ...(e.data as EventData<"RewardPaid">), amount: amount.toString(), epoch: paidIn })] as const) : ([stream, e] as const)))
    const check = (log: ReturnType<typeof sealLog>) => replay(log, { ...testTrust, schedule }).firstBad

    it("accepts a reward cut to what its epoch had left, and refuses it paid in full", () => {
      const start = extendLog(sealLog([]), paying(first.events, first.amount, epoch), at)
      expect(check(start)).toBeUndefined()
      const left = 2n * BASE_UNITS_PER_BLY - first.amount
      expect(check(extendLog(start, paying(second.events, left, epoch), at))).toBeUndefined()
      const full = extendLog(start, paying(second.events, second.amount, epoch), at)
      expect(check(full)).toMatchObject({ seq: full.length - 1, reason: expect.stringContaining(`(${left} within its epoch's cap)`) })
    })

    it("refuses a reward in an epoch later than the one it was recorded in, or earlier than one already rewarded", () => {
      const future = extendLog(sealLog([]), paying(first.events, first.amount, epoch + 1), at)
      expect(check(future)).toMatchObject({ seq: future.length - 1, reason: expect.stringContaining(`later than the epoch ${epoch} the log's time has reached`) })
      const start = extendLog(sealLog([]), paying(first.events, first.amount, epoch), at)
      const back = extendLog(start, paying(second.events, second.amount, epoch - 1), at)
      expect(check(back)).toMatchObject({ seq: back.length - 1, reason: expect.stringContaining(`after rewards in epoch ${epoch}`) })
    })
  })
})
