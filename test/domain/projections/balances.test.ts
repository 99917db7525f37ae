import { Either } from "effect"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { replay } from "../../../domain/ledger/audit.ts"
import { newEvent, type EventData, type NewEvent } from "../../../domain/ledger/events.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../../domain/ledger/signing.ts"
import { Streams } from "../../../domain/ledger/streams.ts"
import { BalancesProjection, decideTransfer, signTransfer, type BalancesState } from "../../../domain/projections/balances.ts"
import { NodesProjection } from "../../../domain/projections/nodes.ts"
import { parseBly } from "../../../domain/rewards/inference.ts"
import { extendLog, sealLog } from "../../support/decider-spec.ts"
import { testTrust } from "../../support/ledger.ts"
import { earnLearningReward } from "../../support/rewards.ts"

const CENT = 10n ** 16n
const seeds = [0, 1, 2].map((i) => sha256Hex(`wallet ${i}`))
const addresses = seeds.map(derivePublicHex)
// The first wallet is also node "n0": its rewards go to the node id, which its key signs for.
const nodeKey = addresses[0]!

type Op =
  | { readonly k: "reward"; readonly to: number; readonly basisPoints: number }
  | { readonly k: "transfer"; readonly from: number; readonly node: boolean; readonly to: number; readonly amount: bigint; readonly fault: "none" | "signer" | "replay" | "skip" }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant("reward" as const), to: fc.nat(2), basisPoints: fc.integer({ min: 100, max: 1000 }) }),
  fc.record({
    k: fc.constant("transfer" as const),
    from: fc.nat(2),
    node: fc.boolean(),
    to: fc.nat(2),
    // In hundredths of a BLY, the unit learning rewards come in (1 BLY per percent).
    amount: fc.integer({ min: 0, max: 1500 }).map((n) => BigInt(n) * CENT),
    fault: fc.constantFrom("none" as const, "none" as const, "signer" as const, "replay" as const, "skip" as const)
  })
)

const addressOf = (i: number, node: boolean) => (node && i === 0 ? "n0" : addresses[i]!)

describe("BLY balances", () => {
  it("under any rewards and transfer attempts: balances never go negative, they sum to the supply, the supply is the rewards, refused transfers change nothing, and a replay agrees (property)", () =>
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const nodes = NodesProjection.initial()
        NodesProjection.evolve(nodes, newEvent("NodeRegistered", { node: "n0", publicKey: nodeKey, keyHash: sha256Hex("k"), device: "cpu", memory: 1, speed: 1 }) as never)
        let state: BalancesState = BalancesProjection.initial()
        const pairs: Array<readonly [string, NewEvent]> = [[Streams.node("n0"), newEvent("NodeRegistered", { node: "n0", publicKey: nodeKey, keyHash: sha256Hex("k"), device: "cpu", memory: 1, speed: 1 })]]
        let rewarded = 0n
        const registered = new Set<string>()
        for (const [n, o] of ops.entries()) {
          if (o.k === "reward") {
            // Earned in a round, as the replay demands: the node id earns by transfers only.
            const { events, amount } = earnLearningReward(seeds[o.to]!, o.basisPoints, n, registered)
            state = BalancesProjection.evolve(state, { type: "RewardPaid", data: { to: addresses[o.to]!, amount: amount.toString(), kind: "learning", epoch: 0 } } as never)
            pairs.push(...events)
            rewarded += amount
            continue
          }
          const from = addressOf(o.from, o.node)
          const last = state.nonces.get(from) ?? 0
          const nonce = o.fault === "replay" ? last : o.fault === "skip" ? last + 2 : last + 1
          const t: EventData<"TransferMade"> = signTransfer({ from, to: addressOf(o.to, !o.node), amount: o.amount.toString(), nonce }, seeds[o.fault === "signer" ? (o.from + 1) % 3 : o.from]!)
          const before = JSON.stringify(BalancesProjection.view(state))
          const d = decideTransfer(state, nodes, t)
          const shouldRefuse = o.fault !== "none" || o.amount === 0n || t.from === t.to || (state.balances.get(from) ?? 0n) < o.amount
          expect(Either.isLeft(d)).toBe(shouldRefuse)
          if (Either.isLeft(d)) {
            expect(JSON.stringify(BalancesProjection.view(state))).toBe(before)
            continue
          }
          for (const e of d.right) {
            state = BalancesProjection.evolve(state, e as never)
            pairs.push([Streams.rewards, e])
          }
        }
        for (const units of state.balances.values()) expect(units >= 0n).toBe(true)
        expect([...state.balances.values()].reduce((a, b) => a + b, 0n)).toBe(state.supply)
        expect(state.supply).toBe(rewarded)
        const r = replay(sealLog(pairs), testTrust)
        expect(r.firstBad).toBeUndefined()
        expect(BalancesProjection.view(r.state.balances)).toEqual(BalancesProjection.view(state))
      }),
      { numRuns: 150 }
    ))

  it("a replay refuses a transfer the decider would refuse, written to the log anyway: an overdraft, another signer, a replayed nonce", () => {
    const earned = earnLearningReward(seeds[0]!, 100, 0, new Set())
    const start = sealLog(earned.events)
    const first = signTransfer({ from: addresses[0]!, to: addresses[1]!, amount: "60", nonce: 1 }, seeds[0]!)
    const cases: ReadonlyArray<readonly [EventData<"TransferMade">, string]> = [
      [signTransfer({ from: addresses[0]!, to: addresses[1]!, amount: (earned.amount + 1n).toString(), nonce: 1 }, seeds[0]!), `holds ${earned.amount} base units, not ${earned.amount + 1n}`],
      [signTransfer({ from: addresses[0]!, to: addresses[1]!, amount: "1", nonce: 1 }, seeds[1]!), "the signature is not"],
      [first, "was used already"]
    ]
    for (const [i, [t, why]] of cases.entries()) {
      const log = extendLog(i === 2 ? extendLog(start, [[Streams.rewards, newEvent("TransferMade", first)]]) : start, [[Streams.rewards, newEvent("TransferMade", t)]])
      expect(replay(log, testTrust).firstBad).toMatchObject({ seq: log.length - 1, reason: expect.stringContaining(why) })
    }
  })

  it("BLY in decimal text becomes exact base units", () => {
    expect(parseBly("1.5")).toBe(15n * 10n ** 17n)
    expect(parseBly("0.000000000000000001")).toBe(1n)
    expect(parseBly("1.0000000000000000001")).toBeUndefined()
    expect(parseBly("-1")).toBeUndefined()
  })
})
