import { Schema } from "effect"
import type { Projection } from "./projection.ts"
import { schemaCodec } from "./state-codec.ts"

export type NodeEntry = {
  readonly node: string
  publicKey: string
  device: string
  /** Bytes of accelerator memory the node offers. */
  memory: number
  /** Relative throughput, as the node announced it. */
  speed: number
  /** Bytes per second of its link, as measured at its last registration (none from nodes that did not measure it). */
  bandwidth: number | undefined
  status: "active" | "banned" | "retired"
  /** When a ban for failing ends (ms since the epoch); none for a ban for cheating. */
  bannedUntil: number | undefined
  /** Why it was last banned. */
  banReason: string | undefined
  blocks: ReadonlyArray<string>
  /** Expert requests it answered acceptably, and the rows they computed. */
  served: number
  rows: number
  /** Expert requests it failed (no answer, a refusal, a wrong answer). */
  failures: number
  /** BLY base units earned, as a decimal string. */
  earned: string
}

export type NodesState = Map<string, NodeEntry>

/** A node's entry, its ban's end and reason left out while it has none (as the explorer shows it). */
export const NodeView = Schema.Struct({
  node: Schema.String,
  publicKey: Schema.String,
  device: Schema.String,
  memory: Schema.Number,
  speed: Schema.Number,
  bandwidth: Schema.optional(Schema.Number),
  status: Schema.Literal("active", "banned", "retired"),
  bannedUntil: Schema.optional(Schema.Number),
  banReason: Schema.optional(Schema.String),
  blocks: Schema.Array(Schema.String),
  served: Schema.Number,
  rows: Schema.Number,
  failures: Schema.Number,
  earned: Schema.String
})

const NodesStateSchema = Schema.Map({
  key: Schema.String,
  value: Schema.Struct({
    ...NodeView.fields,
    bandwidth: Schema.UndefinedOr(Schema.Number),
    bannedUntil: Schema.UndefinedOr(Schema.Number),
    banReason: Schema.UndefinedOr(Schema.String)
  })
})

const fresh = (d: { node: string; publicKey: string; device: string; memory: number; speed: number; bandwidth: number | undefined }): NodeEntry => ({
  ...d,
  status: "active",
  bannedUntil: undefined,
  banReason: undefined,
  blocks: [],
  served: 0,
  rows: 0,
  failures: 0,
  earned: "0"
})

/**
 * The node registry: who serves, with what device, which expert blocks they hold, and what they
 * have served, failed and earned. A registration of a known node (its ban for failing over)
 * renews its profile and keeps its record.
 */
export const NodesProjection: Projection<NodesState, unknown> = {
  name: "nodes",
  initial: () => new Map(),
  evolve: (s, e) => {
    switch (e.type) {
      case "NodeRegistered": {
        const { node, publicKey, device, memory, speed, bandwidth } = e.data
        const n = s.get(node)
        if (n === undefined) s.set(node, fresh({ node, publicKey, device, memory, speed, bandwidth }))
        else Object.assign(n, { publicKey, device, memory, speed, bandwidth, status: "active", bannedUntil: undefined, blocks: [] })
        break
      }
      case "NodeExpertsAnnounced": {
        const n = s.get(e.data.node)
        if (n) n.blocks = e.data.blocks
        break
      }
      case "NodeBanned": {
        const n = s.get(e.data.node)
        if (n) Object.assign(n, { status: "banned", bannedUntil: e.data.until, banReason: e.data.reason })
        break
      }
      case "NodeRetired": {
        const n = s.get(e.data.node)
        if (n) n.status = "retired"
        break
      }
      case "InferenceServed":
        for (const r of e.data.receipts) {
          const n = s.get(r.node)
          if (n) (n.served++, (n.rows += r.rows))
        }
        for (const f of e.data.failures) {
          const n = s.get(f.node)
          if (n) n.failures++
        }
        break
      case "RewardPaid": {
        const n = s.get(e.data.to)
        if (n) n.earned = (BigInt(n.earned) + BigInt(e.data.amount)).toString()
        break
      }
    }
    return s
  },
  view: (s) => [...s.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
  snapshot: schemaCodec(3, NodesStateSchema)
}

/** Whether a node may serve at `now` (ms): active, or banned for failing and the ban is over. */
export const mayServe = (n: NodeEntry, now: number): boolean => n.status === "active" || (n.status === "banned" && n.bannedUntil !== undefined && n.bannedUntil <= now)

/** Active nodes as the devices a plan may use: a node's link is planned with when it was measured. */
export const activeDevices = (s: NodesState) =>
  [...s.values()]
    .filter((n) => n.status === "active")
    .map((n) => ({ id: n.node, speed: n.speed, memory: n.memory, ...(n.bandwidth === undefined ? {} : { bandwidth: n.bandwidth }) }))
