import { Schema } from "effect"
import { BlockAppendedData, newEvent, PublishedSpec, type NewEvent } from "../ledger/events.ts"
import { GENESIS_COVENANT, GENESIS_HASH } from "../ledger/genesis.ts"
import type { Projection } from "./projection.ts"
import { schemaCodec } from "./state-codec.ts"

export type ChainAEntry = { readonly seq: number; readonly type: string; readonly hash: string; readonly at: string }
export type BlockEntry = BlockAppendedData & { readonly seq: number; readonly at: string }

const Seq = Schema.Int.pipe(Schema.nonNegative())
const BlockEntry = Schema.Struct({ ...BlockAppendedData.fields, seq: Seq, at: Schema.String })

const ChainStateSchema = Schema.Struct({
  chainA: Schema.mutable(Schema.Array(Schema.Struct({ seq: Seq, type: Schema.String, hash: Schema.String, at: Schema.String }))),
  specs: Schema.Map({ key: Schema.String, value: PublishedSpec }),
  blocks: Schema.Map({ key: Schema.String, value: BlockEntry }),
  chainB: Schema.mutable(Schema.Array(Schema.String)),
  checkpoints: Schema.mutable(Schema.Array(Schema.String))
})

export type ChainState = {
  readonly chainA: ChainAEntry[]
  /** Model specs by the hash of the event that published them: blocks depend on that hash. */
  readonly specs: Map<string, PublishedSpec>
  readonly blocks: Map<string, BlockEntry>
  /** Chain B in append order. */
  readonly chainB: string[]
  /** Blobs of training checkpoints the epochs' rounds recorded, in order. */
  readonly checkpoints: string[]
}

/** Is `hash` a node of the DAG: the genesis covenant, a published spec or an appended block? */
export const isKnown = (s: ChainState, hash: string): boolean => hash === GENESIS_HASH || s.specs.has(hash) || s.blocks.has(hash)

/** The block's ancestors back to (but excluding) chain A, nearest first. */
export const lineage = (s: ChainState, hash: string): BlockEntry[] => {
  const out: BlockEntry[] = []
  const seen = new Set<string>()
  const queue = [hash]
  while (queue.length > 0) {
    const h = queue.shift()!
    const b = s.blocks.get(h)
    if (!b || seen.has(h)) continue
    seen.add(h)
    out.push(b)
    queue.push(...b.dependsOn)
  }
  return out
}

export const ChainProjection: Projection<ChainState, unknown> = {
  name: "chain",
  initial: () => ({ chainA: [], specs: new Map(), blocks: new Map(), chainB: [], checkpoints: [] }),
  evolve: (s, e) => {
    const env = e.envelope
    if (env.stream === "chain-A") s.chainA.push({ seq: env.seq, type: env.type, hash: env.hash, at: env.at })
    if (e.type === "ModelSpecPublished") s.specs.set(env.hash, e.data.spec)
    if (e.type === "BlockAppended") {
      s.blocks.set(e.data.hash, { ...e.data, seq: env.seq, at: env.at })
      s.chainB.push(e.data.hash)
    }
    if (e.type === "RoundCompleted") s.checkpoints.push(e.data.checkpoint)
    return s
  },
  view: (s) => ({
    chainA: s.chainA,
    specs: [...s.specs.entries()],
    chainB: s.chainB.map((h) => s.blocks.get(h))
  }),
  snapshot: schemaCodec(3, ChainStateSchema)
}

/** Seal the genesis covenant into an empty log; a log that has chain A already needs nothing. */
export const decideGenesis = (s: ChainState): ReadonlyArray<NewEvent> => (s.chainA.length === 0 ? [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)] : [])

/** The blobs the log refers to: every block's payload, every round's checkpoint, every imported model's files. A blob outside this set is an orphan. */
export const referencedPayloads = (s: ChainState): ReadonlySet<string> =>
  new Set([
    ...[...s.blocks.values()].map((b) => b.payload),
    ...s.checkpoints,
    // An imported model's config and tokenizer files.
    ...[...s.specs.values()].flatMap((spec) => ("files" in spec ? Object.values(spec.files) : []))
  ])
