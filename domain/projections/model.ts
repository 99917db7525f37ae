import type { ModelSpec } from "../model/spec.ts"
import type { Projection } from "./projection.ts"

export type PartVersion = { readonly block: string; readonly seq: number; readonly reason: string }

export type ModelState = {
  spec: { readonly hash: string; readonly spec: ModelSpec } | undefined
  /** The block (and its payload) each part name currently resolves to: chain B holds only accepted weights. */
  readonly current: Map<string, { readonly block: string; readonly payload: string }>
  /** Every version of each part, oldest first, with why it became current. */
  readonly history: Map<string, PartVersion[]>
}

/**
 * The model as the ledger defines it. A `BlockAppended` makes its block current for its name
 * (candidates under Proof of Learning are not on chain B until accepted); an `ExpertUpdated`
 * records the reason for the version it names.
 */
export const ModelProjection: Projection<ModelState, unknown> = {
  name: "model",
  initial: () => ({ spec: undefined, current: new Map(), history: new Map() }),
  evolve: (s, e) => {
    if (e.type === "ModelSpecPublished") s.spec = { hash: e.envelope.hash, spec: e.data.spec }
    if (e.type === "BlockAppended") {
      s.current.set(e.data.name, { block: e.data.hash, payload: e.data.payload })
      const h = s.history.get(e.data.name) ?? []
      h.push({ block: e.data.hash, seq: e.envelope.seq, reason: "appended" })
      s.history.set(e.data.name, h)
    }
    if (e.type === "ExpertUpdated") {
      const h = s.history.get(e.data.name)
      const i = h?.findIndex((v) => v.block === e.data.block) ?? -1
      if (h && i >= 0) h[i] = { ...h[i]!, reason: e.data.reason }
    }
    return s
  },
  view: (s) => ({ spec: s.spec, current: [...s.current.entries()], history: [...s.history.entries()] })
}
