import { Either, Schema } from "effect"
import { ModelSpec, parsePartName } from "../model/spec.ts"
import { BUILTIN_MODEL, ImportedSpec, splitImportedPart } from "../model/families/imported-spec.ts"
import { newEvent, type EventData, type NewEvent } from "../ledger/events.ts"
import type { Projection } from "./projection.ts"
import { completedCodec, schemaCodec } from "./state-codec.ts"

export type PartVersion = { readonly block: string; readonly seq: number; reason: string }

export type ModelState = {
  spec: { readonly hash: string; readonly spec: ModelSpec } | undefined
  /** Imported open models by name, each with the hash of the event that published it: their blocks depend on it. */
  readonly imported: Map<string, { readonly hash: string; readonly spec: ImportedSpec }>
  /** The name of the model published last (`BUILTIN_MODEL` for the built-in one): what model commands default to. */
  latest: string | undefined
  /** The block (and its payload) each part name currently resolves to: chain B holds only accepted weights. */
  readonly current: Map<string, { readonly block: string; readonly payload: string }>
  /** Every version of each part, oldest first (chain B order), with why it became current. */
  readonly history: Map<string, PartVersion[]>
  /** The blocks each expert's own stream has recorded with an `ExpertUpdated`. */
  readonly recorded: Map<string, Set<string>>
  /** Each block's version entry, by block hash. */
  readonly versions: Map<string, PartVersion>
}

/** What a snapshot stores: `versions` only indexes the entries of `history`, so it is rebuilt. */
const StoredModel = Schema.Struct({
  spec: Schema.NullOr(Schema.Struct({ hash: Schema.String, spec: ModelSpec })),
  imported: Schema.Map({ key: Schema.String, value: Schema.Struct({ hash: Schema.String, spec: ImportedSpec }) }),
  latest: Schema.NullOr(Schema.String),
  current: Schema.Map({ key: Schema.String, value: Schema.Struct({ block: Schema.String, payload: Schema.String }) }),
  history: Schema.Map({
    key: Schema.String,
    value: Schema.mutable(Schema.Array(Schema.Struct({ block: Schema.String, seq: Schema.Int.pipe(Schema.nonNegative()), reason: Schema.String })))
  }),
  recorded: Schema.Map({ key: Schema.String, value: Schema.Set(Schema.String) })
})

/**
 * Each block's version entry, the very object `history` holds (a reason given later updates
 * both): a block appended twice resolves to its latest append, as the fold leaves it.
 */
const indexVersions = (history: ModelState["history"]): Map<string, PartVersion> => {
  const versions = new Map<string, PartVersion>()
  for (const list of history.values())
    for (const v of list) {
      const known = versions.get(v.block)
      if (known === undefined || known.seq < v.seq) versions.set(v.block, v)
    }
  return versions
}

export const GENESIS_REASON = "genesis weights from the published spec"
export const IMPORT_REASON = "imported from a checkpoint"

/** Why a training run's blocks became current, as its `ExpertUpdated` records say. */
export const trainingReason = (t: EventData<"ModelTrained">) =>
  `local training, ${t.steps} steps: held-out loss ${t.heldOutLossBefore.toFixed(4)} -> ${t.heldOutLossAfter.toFixed(4)}`

/**
 * The model as the ledger defines it. A `BlockAppended` makes its block current for its name
 * (candidates under Proof of Learning are not on chain B until accepted). Why a version became
 * current: genesis when it depends on the spec, the training run whose `ModelTrained` names it, or
 * what its `ExpertUpdated` says.
 */
export const ModelProjection: Projection<ModelState, unknown> = {
  name: "model",
  initial: () => ({ spec: undefined, imported: new Map(), latest: undefined, current: new Map(), history: new Map(), recorded: new Map(), versions: new Map() }),
  evolve: (s, e) => {
    switch (e.type) {
      case "ModelSpecPublished":
        if (e.data.spec.family === "blyan-moe") {
          s.spec = { hash: e.envelope.hash, spec: e.data.spec }
          s.latest = BUILTIN_MODEL
        } else {
          s.imported.set(e.data.spec.name, { hash: e.envelope.hash, spec: e.data.spec })
          s.latest = e.data.spec.name
        }
        break
      case "BlockAppended": {
        s.current.set(e.data.name, { block: e.data.hash, payload: e.data.payload })
        const h = s.history.get(e.data.name) ?? []
        const genesis = s.spec !== undefined && e.data.dependsOn.includes(s.spec.hash)
        const origin = splitImportedPart(e.data.name)
        const imported = origin !== undefined && e.data.dependsOn.includes(s.imported.get(origin.model)?.hash ?? "")
        const version = { block: e.data.hash, seq: e.envelope.seq, reason: genesis ? GENESIS_REASON : imported ? IMPORT_REASON : "appended" }
        h.push(version)
        s.history.set(e.data.name, h)
        s.versions.set(e.data.hash, version)
        break
      }
      case "ModelTrained": {
        const reason = trainingReason(e.data)
        for (const block of e.data.blocks) {
          const v = s.versions.get(block)
          if (v) v.reason = reason
        }
        break
      }
      case "ExpertUpdated": {
        const v = s.versions.get(e.data.block)
        if (v) v.reason = e.data.reason
        const done = s.recorded.get(e.data.name) ?? new Set()
        done.add(e.data.block)
        s.recorded.set(e.data.name, done)
        break
      }
    }
    return s
  },
  view: (s) => ({ spec: s.spec, imported: [...s.imported.entries()], latest: s.latest, current: [...s.current.entries()], history: [...s.history.entries()] }),
  snapshot: completedCodec(
    schemaCodec(3, StoredModel),
    (m) => ({ ...m, spec: m.spec ?? undefined, latest: m.latest ?? undefined, versions: indexVersions(m.history) }),
    (s) => ({ spec: s.spec ?? null, imported: s.imported, latest: s.latest ?? null, current: s.current, history: s.history, recorded: s.recorded })
  )
}

/**
 * The `ExpertUpdated` events an expert's stream still lacks, oldest first: one per version of the
 * expert on chain B. An operation cut off after its chain-B append is finished by appending these.
 */
export const pendingExpertUpdates = (s: ModelState, name: string): ReadonlyArray<NewEvent> => {
  const versions = s.history.get(name) ?? []
  const done = s.recorded.get(name)
  return versions.flatMap((v, i) =>
    done?.has(v.block) ? [] : [newEvent("ExpertUpdated", { name, block: v.block, previous: versions[i - 1]?.block ?? null, reason: v.reason })]
  )
}

/** Experts whose stream lacks an `ExpertUpdated` for some version on chain B. */
export const expertsPendingUpdate = (s: ModelState): ReadonlyArray<string> =>
  [...s.history.keys()].filter((name) => parsePartName(name)?.kind === "expert" && pendingExpertUpdates(s, name).length > 0)

/** Whether the model is still its genesis weights: a published spec and no part with a second version. */
export const untrained = (s: ModelState): boolean => s.spec !== undefined && [...s.history.values()].every((versions) => versions.length === 1)

/** The imported model named `name`, or why the ledger has none (naming those it has). */
export const importedModelOf = (s: ModelState, name: string): Either.Either<{ readonly hash: string; readonly spec: ImportedSpec }, string> =>
  Either.flatMap(chooseModel(s, name), (m) => (m.kind === "imported" ? Either.right(m) : Either.left(`${name} is the built-in model, not an imported one`)))

/** A model of the ledger as a command names it: the built-in one, or an imported one. */
export type ChosenModel =
  | { readonly kind: "builtin"; readonly name: typeof BUILTIN_MODEL; readonly hash: string; readonly spec: ModelSpec }
  | { readonly kind: "imported"; readonly name: string; readonly hash: string; readonly spec: ImportedSpec }

/** Each model the ledger holds, the built-in one first, then imports in publication order: its name, shape and spec hash. */
export const modelList = (s: ModelState) =>
  [...(s.spec === undefined ? [] : [[BUILTIN_MODEL, s.spec] as const]), ...s.imported].map(([name, { hash, spec }]) => ({
    name,
    family: spec.family,
    hash,
    layers: spec.layers,
    experts: spec.experts,
    topK: spec.topK,
    latest: name === s.latest
  }))

/** The models the ledger holds, by name, the built-in one first. */
export const modelNames = (s: ModelState): ReadonlyArray<string> => modelList(s).map((m) => m.name)

/** The model named `name` (without one, the one published last), or why the ledger has none (naming those it has). */
export const chooseModel = (s: ModelState, name?: string): Either.Either<ChosenModel, string> => {
  const wanted = name ?? s.latest
  if (wanted === undefined) return Either.left("the ledger holds no model yet: run `blyan init`")
  if (wanted === BUILTIN_MODEL && s.spec !== undefined) return Either.right({ kind: "builtin", name: BUILTIN_MODEL, ...s.spec })
  const imported = s.imported.get(wanted)
  if (imported !== undefined) return Either.right({ kind: "imported", name: wanted, ...imported })
  const known = modelNames(s)
  return Either.left(`the ledger holds no model named ${JSON.stringify(wanted)}${known.length === 0 ? "" : ` (it holds ${known.join(", ")})`}`)
}
