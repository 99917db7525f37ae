/**
 * Which replica of an expert the router asks, in order of preference: a node that may serve,
 * announced the block, and sent a heartbeat from a serving state recently; the one with the
 * shortest queue first (what it reported, plus what this router sent it and has not heard back
 * about); among equals, an order that differs per request, so equal nodes share the work.
 */
import { mayServe, type NodeEntry } from "../projections/nodes.ts"

export type LiveNode = { readonly status: string; readonly queue: number; readonly at: number }

/** Whether a node's latest heartbeat, if any, is no older than `staleMs` at `now`. */
export const heardWithin = (hb: LiveNode | undefined, now: number, staleMs: number): hb is LiveNode => hb !== undefined && now - hb.at <= staleMs

export type ChoiceContext = {
  readonly nodes: Iterable<NodeEntry>
  /** The latest heartbeat of each node, stamped when it arrived. */
  readonly live: ReadonlyMap<string, LiveNode>
  /** Requests this router has in flight, per node. */
  readonly outstanding: ReadonlyMap<string, number>
  readonly now: number
  /** A heartbeat older than this says nothing about the node. */
  readonly staleMs: number
}

/** FNV-1a of a string: a cheap, stable tie-break. */
const fnv = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** The replicas holding `block`, best first; `salt` (the request id) varies the order among equals. */
export const replicaOrder = (c: ChoiceContext, block: string, salt: string): ReadonlyArray<string> =>
  [...c.nodes]
    .filter((n) => {
      const hb = c.live.get(n.node)
      return mayServe(n, c.now) && n.blocks.includes(block) && heardWithin(hb, c.now, c.staleMs) && hb.status.startsWith("serving")
    })
    .map((n) => ({ node: n.node, load: c.live.get(n.node)!.queue + (c.outstanding.get(n.node) ?? 0), tie: fnv(`${salt}/${n.node}`) }))
    .sort((a, b) => a.load - b.load || a.tie - b.tie || (a.node < b.node ? -1 : 1))
    .map((x) => x.node)

/** One request of a layer's: the node asked (none: the expert's queue group) and which experts, by index. */
export type PlannedRequest = { readonly node: string | undefined; readonly jobs: ReadonlyArray<number> }

/**
 * Which node to ask for which of a layer's experts, given each one's replicas best first
 * (`orders`): few requests, by a greedy cover that takes, each time, the node serving the most of
 * the experts left, ties to the best placed (the least sum of its ranks), then by name. An expert
 * with no replica in its order goes alone, to no node named.
 */
export const requestPlan = (orders: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<PlannedRequest> => {
  const plan: PlannedRequest[] = []
  const left = new Set<number>()
  orders.forEach((order, i) => (order.length === 0 ? plan.push({ node: undefined, jobs: [i] }) : left.add(i)))
  while (left.size > 0) {
    const score = new Map<string, { count: number; rank: number }>()
    for (const i of left)
      orders[i]!.forEach((node, rank) => {
        const s = score.get(node) ?? { count: 0, rank: 0 }
        score.set(node, { count: s.count + 1, rank: s.rank + rank })
      })
    const [best] = [...score].sort(([a, x], [b, y]) => y.count - x.count || x.rank - y.rank || (a < b ? -1 : 1))[0]!
    const jobs = [...left].filter((i) => orders[i]!.includes(best))
    for (const i of jobs) left.delete(i)
    plan.push({ node: best, jobs })
  }
  return plan
}
