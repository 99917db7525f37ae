/**
 * What the explorer shows, read off the ledger's projections: pure functions of a `LedgerState`,
 * so a view of the live read models and one of a fresh replay from seq 0 can be compared as values.
 */
import type { LedgerState } from "./ledger-state.ts"
import { modelList } from "./model.ts"
import { verdictOf } from "../pol/report.ts"
import { outcomeOf } from "../pol/rounds.ts"

/** The current block of every part, with the spec they belong to. */
export const modelView = (s: LedgerState) => ({
  spec: s.model.spec ?? null,
  models: modelList(s.model),
  latest: s.model.latest ?? null,
  parts: [...s.model.current].map(([name, c]) => ({ name, block: c.block, payload: c.payload })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
})

/** A page of chain A's events or chain B's blocks, in append order, from `cursor` (an index). */
export const chainPage = (s: LedgerState, chain: "A" | "B", cursor: number, limit: number) => {
  const all = chain === "A" ? s.chain.chainA : s.chain.chainB
  const slice = all.slice(cursor, cursor + limit)
  const items = chain === "A" ? (slice as LedgerState["chain"]["chainA"]) : (slice as ReadonlyArray<string>).map((h) => s.chain.blocks.get(h)!)
  return { chain, total: all.length, next: cursor + slice.length < all.length ? cursor + slice.length : null, items }
}

export const blockView = (s: LedgerState, hash: string) => s.chain.blocks.get(hash)

/** Every version a part has had, oldest first, each with its place in the DAG and why it became current. */
export const expertHistory = (s: LedgerState, name: string) => {
  const versions = s.model.history.get(name)
  if (versions === undefined) return undefined
  return {
    name,
    current: s.model.current.get(name)?.block ?? null,
    versions: versions.map((v) => {
      const b = s.chain.blocks.get(v.block)!
      return { block: v.block, seq: v.seq, reason: v.reason, dependsOn: b.dependsOn, contributor: b.contributor, at: b.at }
    })
  }
}

export const nodesView = (s: LedgerState) =>
  [...s.nodes.values()]
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
    .map(({ bandwidth, bannedUntil, banReason, ...n }) => ({
      ...n,
      ...(bandwidth === undefined ? {} : { bandwidth }),
      ...(bannedUntil === undefined ? {} : { bannedUntil }),
      ...(banReason === undefined ? {} : { banReason })
    }))

export const roundsView = (s: LedgerState) =>
  [...s.rounds.values()].map((r) => ({
    round: r.opened.round,
    target: r.opened.target,
    base: r.opened.base,
    contributions: r.contributions.size,
    accepted: r.accepted ?? null,
    closed: r.closed
  }))

/** One round: its rule, its validators, and each contribution with its verdicts and outcome. */
export const roundView = (s: LedgerState, id: string) => {
  const r = s.rounds.get(id)
  if (r === undefined) return undefined
  const { round, target, base, epsilon, minWinShare, batches, validators } = r.opened
  return {
    round,
    target,
    base,
    epsilon,
    minWinShare,
    batches,
    validators,
    contributions: [...r.contributions].map(([contribution, block]) => ({
      contribution,
      block: block.hash,
      contributor: block.contributor,
      outcome: outcomeOf(r, contribution),
      reason: r.rejected.get(contribution) ?? null,
      verdicts: (r.verdicts.get(contribution) ?? []).map(verdictOf)
    })),
    closed: r.closed
  }
}

export const balanceView = (s: LedgerState, address: string) => ({
  address,
  units: (s.balances.balances.get(address) ?? 0n).toString(),
  supply: s.balances.supply.toString()
})
