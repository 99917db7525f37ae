import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { newEvent, type EventData } from "../../../domain/ledger/events.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../../domain/ledger/signing.ts"
import { signReceipt } from "../../../domain/network/receipts.ts"
import { NodesProjection } from "../../../domain/projections/nodes.ts"
import { INFERENCE_RATE_PER_ROW, formatBly, inferenceEarnings, inferenceOwed, makeInferenceLedger } from "../../../domain/rewards/inference.ts"
import { ISSUANCE, payRewards } from "../../../domain/rewards/issuance.ts"
import { BalancesProjection } from "../../../domain/projections/balances.ts"

const names = ["n1", "n2", "n3"]
const seeds = new Map(names.map((n) => [n, sha256Hex(`seed ${n}`)]))
const nodes = NodesProjection.initial()
for (const node of names)
  NodesProjection.evolve(nodes, newEvent("NodeRegistered", { node, publicKey: derivePublicHex(seeds.get(node)!), keyHash: sha256Hex(node), device: "cpu", memory: 1, speed: 1 }) as never)

/** One chat's receipts: each by a registered node, signed with its key. */
const receiptsArb = fc.array(fc.record({ node: fc.constantFrom(...names), rows: fc.integer({ min: 1, max: 64 }), layer: fc.nat(3), expert: fc.nat(7) }), { minLength: 1, maxLength: 12 })

const served = (request: string, rs: ReadonlyArray<{ node: string; rows: number; layer: number; expert: number }>): EventData<"InferenceServed"> => ({
  request,
  part: 0,
  tokens: rs.length,
  experts: [],
  receipts: rs.map((r, i) =>
    signReceipt(
      { requestId: `${request}.${i}`, node: r.node, layer: r.layer, expert: r.expert, block: sha256Hex("block"), rows: r.rows, inputDigest: sha256Hex(`in${i}`), outputDigest: sha256Hex(`out${i}`) },
      seeds.get(r.node)!
    )
  ),
  failures: []
})

const rewardsOf = (request: string, d: EventData<"InferenceServed">) =>
  payRewards(ISSUANCE, BalancesProjection.initial(), inferenceOwed(request, d.receipts), 0).map((e) => e.data as EventData<"RewardPaid">)
/** What the first epoch has left: far more than any of these rewards. */
const LEFT = ISSUANCE.initial

describe("inference rewards", () => {
  it("pay each node rate x its rows, in integer base units: what is paid sums to rate x all rows (property)", () =>
    fc.assert(
      fc.property(receiptsArb, (rs) => {
        const earned = inferenceEarnings(rs)
        const total = [...earned.values()].reduce((a, b) => a + b, 0n)
        expect(total).toBe(BigInt(rs.reduce((a, r) => a + r.rows, 0)) * INFERENCE_RATE_PER_ROW)
        for (const [node, amount] of earned) expect(amount).toBe(BigInt(rs.filter((r) => r.node === node).reduce((a, r) => a + r.rows, 0)) * INFERENCE_RATE_PER_ROW)
      })
    ))

  it("a replay accepts exactly the rewards the receipts earned, once each; any other amount, a second payment, an unknown cause or a receipt altered after signing is refused (property)", () =>
    fc.assert(
      fc.property(receiptsArb, fc.nat(), fc.constantFrom("amount", "twice", "cause", "rows", "node"), (rs, pick, fault) => {
        const honest = makeInferenceLedger()
        const d = served("chat-1", rs)
        expect(honest.served(nodes, d)).toBeUndefined()
        for (const r of rewardsOf("chat-1", d)) expect(honest.paid(r, LEFT)).toBeUndefined()

        const checked = makeInferenceLedger()
        const rewards = rewardsOf("chat-1", d)
        const victim = pick % rewards.length
        if (fault === "rows" || fault === "node") {
          const i = pick % d.receipts.length
          const r = d.receipts[i]!
          const altered = fault === "rows" ? { ...r, rows: r.rows + 1 } : { ...r, node: names.find((n) => n !== r.node)! }
          const bad = { ...d, receipts: d.receipts.map((x, j) => (j === i ? altered : x)) }
          expect(checked.served(nodes, bad)).toMatch(/is not signed by node/)
          return
        }
        expect(checked.served(nodes, d)).toBeUndefined()
        const verdicts = rewards.map((r, i) => {
          if (i !== victim) return checked.paid(r, LEFT)
          if (fault === "amount") return checked.paid({ ...r, amount: (BigInt(r.amount) + 1n).toString() }, LEFT)
          if (fault === "cause") return checked.paid({ ...r, cause: "chat-2" }, LEFT)
          return checked.paid(r, LEFT) ?? checked.paid(r, LEFT)
        })
        expect(verdicts.filter((v) => v !== undefined)).toHaveLength(1)
        expect(verdicts[victim]).toMatch(/^an inference reward/)
      })
    ))

  it("BLY amounts print with their decimals", () => {
    expect(formatBly(0n)).toBe("0")
    expect(formatBly(INFERENCE_RATE_PER_ROW * 3n)).toBe("0.000003")
    expect(formatBly(15n * 10n ** 17n)).toBe("1.5")
  })
})
