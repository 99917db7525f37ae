/**
 * A GPU node's lifecycle: registering → syncing → loading → serving → draining → stopped, or
 * failed with the reason. Pure: the node agent hosts it and feeds it what happened (registration
 * answered, replica caught up, blocks verified, an expert updated, SIGTERM); `announcement` says
 * which transitions the ledger records, for the stream owner to append on the node's behalf
 * (nodes never write the log).
 *
 * Serving has two sub-states: `steady`, and `swapping` while a new block of a hosted expert is
 * being fetched and verified (`ExpertUpdated` named it). The old block keeps serving until the new
 * one is in; an update that arrives while loading is applied as soon as serving begins.
 */
import { assign, setup, type SnapshotFrom } from "xstate"
import { newEvent, type NewEvent } from "../ledger/events.ts"

/** Block hash per hosted part (e.g. `layer0.expert3`). */
export type HostedBlocks = Readonly<Record<string, string>>

export type NodeMachineEvent =
  | { readonly type: "registered"; readonly node: string }
  | { readonly type: "refused"; readonly reason: string }
  | { readonly type: "synced"; readonly head: number }
  | { readonly type: "loaded"; readonly blocks: HostedBlocks }
  | { readonly type: "expert.updated"; readonly part: string; readonly block: string }
  | { readonly type: "swapped"; readonly part: string; readonly block: string }
  | { readonly type: "failed"; readonly reason: string }
  | { readonly type: "banned"; readonly reason: string }
  | { readonly type: "drain" }
  | { readonly type: "drained" }

export interface NodeMachineContext {
  readonly node: string | undefined
  /** The replica's head seq when it caught up. */
  readonly head: number | undefined
  /** What the node serves now. */
  readonly blocks: HostedBlocks
  /** Newer blocks named by `ExpertUpdated`, not yet in. */
  readonly pending: HostedBlocks
  readonly reason: string | undefined
}

const without = (r: HostedBlocks, key: string): HostedBlocks => Object.fromEntries(Object.entries(r).filter(([k]) => k !== key))

const nodeMachineSetup = setup({
  types: { context: {} as NodeMachineContext, events: {} as NodeMachineEvent },
  actions: {
    named: assign({ node: ({ event }) => (event.type === "registered" ? event.node : undefined) }),
    caughtUp: assign({ head: ({ event, context }) => (event.type === "synced" ? event.head : context.head) }),
    holdBlocks: assign({ blocks: ({ event, context }) => (event.type === "loaded" ? event.blocks : context.blocks) }),
    /** Note a newer block for a hosted part; one for a part not hosted is not this node's concern. */
    noteUpdate: assign({
      pending: ({ event, context }) => (event.type === "expert.updated" ? { ...context.pending, [event.part]: event.block } : context.pending)
    }),
    swapIn: assign(({ event, context }) => {
      if (event.type !== "swapped") return {}
      const pending = context.pending[event.part] === event.block ? without(context.pending, event.part) : context.pending
      return { blocks: { ...context.blocks, [event.part]: event.block }, pending }
    }),
    why: assign({
      reason: ({ event }) =>
        event.type === "refused" ? `registration refused: ${event.reason}` : event.type === "banned" ? `banned: ${event.reason}` : event.type === "failed" ? event.reason : undefined
    })
  },
  guards: {
    /** An update for a part this node hosts, to a block other than the one it serves or awaits. */
    newBlockOfHosted: ({ context, event }) =>
      event.type === "expert.updated" &&
      (event.part in context.blocks || event.part in context.pending) &&
      (context.pending[event.part] ?? context.blocks[event.part]) !== event.block,
    /** The block that came in is the one awaited for its part. */
    awaited: ({ context, event }) => event.type === "swapped" && context.pending[event.part] === event.block,
    swapsLeft: ({ context }) => Object.keys(context.pending).length > 0,
    noSwapsLeft: ({ context }) => Object.keys(context.pending).length === 0
  }
})

/** A fatal failure or a ban ends any state a node is active in (a final state takes nothing). */
const ended = { failed: { target: "failed", actions: "why" }, banned: { target: "failed", actions: "why" } } as const

export const nodeMachine = nodeMachineSetup.createMachine({
  id: "node",
  context: { node: undefined, head: undefined, blocks: {}, pending: {}, reason: undefined },
  initial: "registering",
  // `failed` (any fatal error: a broken hash link, a block that does not verify) is handled by
  // each state that is not final: on the machine itself it would move a stopped node too.
  states: {
    registering: {
      on: {
        failed: { target: "failed", actions: "why" },
        registered: { target: "syncing", actions: "named" },
        refused: { target: "failed", actions: "why" },
        // Nothing is served yet: nothing to drain.
        drain: "stopped"
      }
    },
    syncing: {
      on: { ...ended, synced: { target: "loading", actions: "caughtUp" }, drain: "draining" }
    },
    loading: {
      on: { ...ended, loaded: { target: "serving", actions: "holdBlocks" }, "expert.updated": { actions: "noteUpdate" }, drain: "draining" }
    },
    serving: {
      initial: "steady",
      on: { ...ended, drain: "draining" },
      states: {
        steady: {
          always: { guard: "swapsLeft", target: "swapping" },
          on: { "expert.updated": { guard: "newBlockOfHosted", target: "swapping", actions: "noteUpdate" } }
        },
        swapping: {
          always: { guard: "noSwapsLeft", target: "steady" },
          on: {
            "expert.updated": { guard: "newBlockOfHosted", actions: "noteUpdate" },
            swapped: { guard: "awaited", actions: "swapIn" }
          }
        }
      }
    },
    draining: {
      on: { failed: { target: "failed", actions: "why" }, drained: "stopped" }
    },
    stopped: { type: "final" },
    failed: { type: "final" }
  }
})

export type NodeSnapshot = SnapshotFrom<typeof nodeMachine>

/** The lifecycle's state as a path: "registering", …, "serving.steady", "serving.swapping", …, "failed". */
export const nodeStatus = (s: NodeSnapshot): string => {
  const v = s.value
  return typeof v === "string" ? v : Object.entries(v).map(([k, sub]) => `${k}.${String(sub)}`)[0]!
}

const sortedBlocks = (b: HostedBlocks) => [...new Set(Object.values(b))].sort()

/**
 * What the ledger records for a transition from `before` to `after`: the blocks a node serves
 * whenever that set starts or changes (`NodeExpertsAnnounced`), and its retirement once it has
 * drained (`NodeRetired`). Registration and bans are recorded by the actors that decide them.
 */
export const announcement = (before: NodeSnapshot, after: NodeSnapshot): NewEvent | undefined => {
  const node = after.context.node
  if (node === undefined) return undefined
  if (after.matches("serving") && !after.matches({ serving: "swapping" })) {
    const was = before.matches({ serving: "steady" }) ? sortedBlocks(before.context.blocks) : undefined
    const now = sortedBlocks(after.context.blocks)
    return was !== undefined && was.join() === now.join() ? undefined : newEvent("NodeExpertsAnnounced", { node, blocks: now })
  }
  if (after.matches("stopped") && before.matches("draining")) return newEvent("NodeRetired", { node })
  return undefined
}
