/**
 * What nodes earn for inference: a fixed number of BLY base units per token (row) an expert
 * computed in an answer the router accepted. Failed and disputed answers carry no receipt in the
 * record and earn nothing. Integer arithmetic throughout: amounts never lose a unit.
 */
import { newEvent, type NewEvent } from "../ledger/events.ts"

/** Base units in one BLY. */
export const BASE_UNITS_PER_BLY = 10n ** 18n
/** Base units paid per row an expert computed: a millionth of a BLY. */
export const INFERENCE_RATE_PER_ROW = BASE_UNITS_PER_BLY / 1_000_000n

/** Each node's earnings for `receipts`, in base units, nodes in name order. */
export const inferenceEarnings = (receipts: ReadonlyArray<{ readonly node: string; readonly rows: number }>, rate = INFERENCE_RATE_PER_ROW): ReadonlyMap<string, bigint> => {
  const rows = new Map<string, bigint>()
  for (const r of receipts) rows.set(r.node, (rows.get(r.node) ?? 0n) + BigInt(r.rows))
  return new Map([...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([node, n]) => [node, n * rate]))
}

/** The `RewardPaid` events for one chat request's accepted receipts. */
export const inferenceRewards = (request: string, receipts: ReadonlyArray<{ readonly node: string; readonly rows: number }>): ReadonlyArray<NewEvent> =>
  [...inferenceEarnings(receipts)].map(([to, amount]) => newEvent("RewardPaid", { to, amount: amount.toString(), kind: "inference", cause: request }))

/** A whole amount of base units as BLY with its decimals, trailing zeros dropped ("1.5", "0.000002"). */
export const formatBly = (units: bigint): string => {
  const whole = units / BASE_UNITS_PER_BLY
  const frac = (units % BASE_UNITS_PER_BLY).toString().padStart(18, "0").replace(/0+$/, "")
  return frac.length === 0 ? whole.toString() : `${whole}.${frac}`
}
