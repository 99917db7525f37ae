import { Schema } from "effect"
import type { Projection } from "./projection.ts"
import { schemaCodec } from "./state-codec.ts"

export type NodeEntry = {
  readonly node: string
  readonly publicKey: string
  readonly device: string
  /** Bytes of accelerator memory the node offers. */
  readonly memory: number
  /** Relative throughput, as the node announced it. */
  readonly speed: number
  status: "active" | "banned" | "retired"
  blocks: ReadonlyArray<string>
}

export type NodesState = Map<string, NodeEntry>

const NodesStateSchema = Schema.Map({
  key: Schema.String,
  value: Schema.Struct({
    node: Schema.String,
    publicKey: Schema.String,
    device: Schema.String,
    memory: Schema.Number,
    speed: Schema.Number,
    status: Schema.Literal("active", "banned", "retired"),
    blocks: Schema.Array(Schema.String)
  })
})

/** The node registry: who serves, with what device, and which expert blocks they hold. */
export const NodesProjection: Projection<NodesState, unknown> = {
  name: "nodes",
  initial: () => new Map(),
  evolve: (s, e) => {
    switch (e.type) {
      case "NodeRegistered":
        s.set(e.data.node, { node: e.data.node, publicKey: e.data.publicKey, device: e.data.device, memory: e.data.memory, speed: e.data.speed, status: "active", blocks: [] })
        break
      case "NodeExpertsAnnounced": {
        const n = s.get(e.data.node)
        if (n) n.blocks = e.data.blocks
        break
      }
      case "NodeBanned":
      case "NodeRetired": {
        const n = s.get(e.data.node)
        if (n) n.status = e.type === "NodeBanned" ? "banned" : "retired"
        break
      }
    }
    return s
  },
  view: (s) => [...s.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
  snapshot: schemaCodec(1, NodesStateSchema)
}

/** Active nodes as the devices a plan may use. */
export const activeDevices = (s: NodesState) =>
  [...s.values()].filter((n) => n.status === "active").map((n) => ({ id: n.node, speed: n.speed, memory: n.memory }))
