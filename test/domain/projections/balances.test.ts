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

const seeds = [0, 1, 2].map((i) => sha256Hex(`wallet ${i}`))
const addresses = seeds.map(derivePublicHex)
// The first wallet is also node "n0": its rewards go to the node id, which its key signs for.
const nodeKey = addresses[0]!

type Op =
  | { readonly k: "reward"; readonly to: number; readonly node: boolean; readonly amount: number }
  | { readonly k: "transfer"; readonly from: number; readonly node: boolean; readonly to: number; readonly amount: number; readonly fault: "none" | "signer" | "replay" | "skip" }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant("reward" as const), to: fc.nat(2), node: fc.boolean(), amount: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({
    k: fc.constant("transfer" as const),
    from: fc.nat(2),
    node: fc.boolean(),
    to: fc.nat(2),
    amount: fc.integer({ min: 0, max: 1500 }),
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
        for (const o of ops) {
          if (o.k === "reward") {
            const e = newEvent("RewardPaid", { to: addressOf(o.to, o.node), amount: String(o.amount), kind: "learning", cause: "c" })
            state = BalancesProjection.evolve(state, e as never)
            pairs.push([Streams.rewards, e])
            rewarded += BigInt(o.amount)
            continue
          }
          const from = addressOf(o.from, o.node)
          const last = state.nonces.get(from) ?? 0
          const nonce = o.fault === "replay" ? last : o.fault === "skip" ? last + 2 : last + 1
          const t: EventData<"TransferMade"> = signTransfer({ from, to: addressOf(o.to, !o.node), amount: String(o.amount), nonce }, seeds[o.fault === "signer" ? (o.from + 1) % 3 : o.from]!)
          const before = JSON.stringify(BalancesProjection.view(state))
          const d = decideTransfer(state, nodes, t)
          const shouldRefuse = o.fault !== "none" || o.amount === 0 || t.from === t.to || (state.balances.get(from) ?? 0n) < BigInt(o.amount)
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
        const r = replay(sealLog(pairs))
        expect(r.firstBad).toBeUndefined()
        expect(BalancesProjection.view(r.state.balances)).toEqual(BalancesProjection.view(state))
      }),
      { numRuns: 150 }
    ))

  it("a replay refuses a transfer the decider would refuse, written to the log anyway: an overdraft, another signer, a replayed nonce", () => {
    const start = sealLog([[Streams.rewards, newEvent("RewardPaid", { to: addresses[0]!, amount: "100", kind: "learning", cause: "c" })]])
    const first = signTransfer({ from: addresses[0]!, to: addresses[1]!, amount: "60", nonce: 1 }, seeds[0]!)
    const cases: ReadonlyArray<readonly [EventData<"TransferMade">, string]> = [
      [signTransfer({ from: addresses[0]!, to: addresses[1]!, amount: "101", nonce: 1 }, seeds[0]!), "holds 100 base units, not 101"],
      [signTransfer({ from: addresses[0]!, to: addresses[1]!, amount: "1", nonce: 1 }, seeds[1]!), "the signature is not"],
      [first, "was used already"]
    ]
    for (const [i, [t, why]] of cases.entries()) {
      const log = extendLog(i === 2 ? extendLog(start, [[Streams.rewards, newEvent("TransferMade", first)]]) : start, [[Streams.rewards, newEvent("TransferMade", t)]])
      expect(replay(log).firstBad).toMatchObject({ seq: log.length - 1, reason: expect.stringContaining(why) })
    }
  })

  it("BLY in decimal text becomes exact base units", () => {
    expect(parseBly("1.5")).toBe(15n * 10n ** 17n)
    expect(parseBly("0.000000000000000001")).toBe(1n)
    expect(parseBly("1.0000000000000000001")).toBeUndefined()
    expect(parseBly("-1")).toBeUndefined()
  })
})
