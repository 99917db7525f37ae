/**
 * What nodes earn for inference: a fixed number of BLY base units per token (row) an expert
 * computed in an answer the router accepted. Failed and disputed answers carry no receipt in the
 * record and earn nothing. Integer arithmetic throughout: amounts never lose a unit.
 */
import type { EventData } from "../ledger/events.ts"
import { cappedAmount, type Owed } from "./issuance.ts"
import { receiptSigned } from "../network/receipts.ts"
import type { NodesState } from "../projections/nodes.ts"
import { BASE_UNITS_PER_BLY } from "./units.ts"

export { BASE_UNITS_PER_BLY }
/** Base units paid per row an expert computed: a millionth of a BLY. */
export const INFERENCE_RATE_PER_ROW = BASE_UNITS_PER_BLY / 1_000_000n

/** Each node's earnings for `receipts`, in base units, nodes in name order. */
export const inferenceEarnings = (receipts: ReadonlyArray<{ readonly node: string; readonly rows: number }>, rate = INFERENCE_RATE_PER_ROW): ReadonlyMap<string, bigint> => {
  const rows = new Map<string, bigint>()
  for (const r of receipts) rows.set(r.node, (rows.get(r.node) ?? 0n) + BigInt(r.rows))
  return new Map([...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([node, n]) => [node, n * rate]))
}

/** What one chat request's accepted receipts earned each node, to be paid (see `issuance.ts`). */
export const inferenceOwed = (request: string, receipts: ReadonlyArray<{ readonly node: string; readonly rows: number }>): ReadonlyArray<Owed> =>
  [...inferenceEarnings(receipts)].map(([to, amount]) => ({ to, amount, kind: "inference", cause: request }))

/** BLY as decimal text ("1.5", "0.000002") to base units; undefined for anything else. */
export const parseBly = (text: string): bigint | undefined => {
  const m = /^(0|[1-9][0-9]{0,20})(?:\.([0-9]{1,18}))?$/.exec(text)
  return m === null ? undefined : BigInt(m[1]!) * BASE_UNITS_PER_BLY + BigInt((m[2] ?? "").padEnd(18, "0"))
}

/** A whole amount of base units as BLY with its decimals, trailing zeros dropped ("1.5", "0.000002"). */
export const formatBly = (units: bigint): string => {
  const whole = units / BASE_UNITS_PER_BLY
  const frac = (units % BASE_UNITS_PER_BLY).toString().padStart(18, "0").replace(/0+$/, "")
  return frac.length === 0 ? whole.toString() : `${whole}.${frac}`
}

/**
 * What a replay checks of inference: every receipt recorded is signed by the registered key of
 * the node it names, and every inference `RewardPaid` pays exactly what that request's receipts
 * earned that node (or what its epoch had left, if less), once. `due` holds what is earned and not yet paid, per request and node.
 */
export const makeInferenceLedger = () => {
  const due = new Map<string, Map<string, bigint>>()
  return {
    served: (nodes: NodesState, d: EventData<"InferenceServed">): string | undefined => {
      for (const r of d.receipts) {
        const key = nodes.get(r.node)?.publicKey
        if (key === undefined) return `receipt ${r.requestId} names node ${r.node}, which is not registered`
        if (!receiptSigned(r, key)) return `receipt ${r.requestId} is not signed by node ${r.node}'s registered key`
      }
      const owed = due.get(d.request) ?? new Map<string, bigint>()
      for (const [node, amount] of inferenceEarnings(d.receipts)) owed.set(node, (owed.get(node) ?? 0n) + amount)
      due.set(d.request, owed)
      return undefined
    },
    /** `left`: what the reward's epoch had left to issue. */
    paid: (d: EventData<"RewardPaid">, left: bigint): string | undefined => {
      if (d.kind !== "inference") return undefined
      const owed = due.get(d.cause)?.get(d.to)
      if (owed === undefined) return `an inference reward to ${d.to} for ${d.cause}, which earned it nothing (or was paid already)`
      const amount = cappedAmount(owed, left)
      if (amount !== BigInt(d.amount)) return `an inference reward of ${d.amount} to ${d.to} for ${d.cause}, whose receipts earned it ${owed} (${amount} within its epoch's cap)`
      due.get(d.cause)!.delete(d.to)
      return undefined
    }
  }
}
