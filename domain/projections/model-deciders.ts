import { Either, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { newEvent, type BlockAppendedData, type EventData, type NewEvent } from "../ledger/events.ts"
import type { ModelSpec } from "../model/spec.ts"
import { BUILTIN_MODEL, splitImportedPart, type ImportedSpec } from "../model/families/imported-spec.ts"
import type { ModelState } from "./model.ts"

export const ModelRefusalKind = Schema.Literal("OtherModel", "NoSpec", "NotGenesis", "StaleBase", "Empty")

/** A model command the ledger's current state does not allow; nothing is recorded. */
export class ModelRefused extends Schema.TaggedError<ModelRefused>()("ModelRefused", { kind: ModelRefusalKind, message: Schema.String }) {}

const refuse = (kind: typeof ModelRefusalKind.Type, message: string) => Either.left(new ModelRefused({ kind, message }))
const nothing = Either.right<ReadonlyArray<NewEvent>>([])

/** Publish the model spec on chain A, once; a ledger holding another spec refuses it. */
export const decidePublishSpec = (s: ModelState, spec: ModelSpec): Either.Either<ReadonlyArray<NewEvent>, ModelRefused> => {
  if (s.spec === undefined) return Either.right([newEvent("ModelSpecPublished", { spec })])
  if (canonicalize(s.spec.spec) === canonicalize(spec)) return nothing
  return refuse("OtherModel", `the ledger already holds model ${s.spec.spec.name} (spec ${s.spec.hash}); refusing another genesis`)
}

/**
 * Append the genesis blocks of the parts that have none yet, in one chain-B append. Each must
 * depend on the published spec alone; parts that already have a block are left as they are, so
 * a publish cut off by a crash, or raced by another, finishes without recording anything twice.
 */
export const decidePublishGenesis = (s: ModelState, blocks: ReadonlyArray<BlockAppendedData>): Either.Either<ReadonlyArray<NewEvent>, ModelRefused> => {
  if (s.spec === undefined) return refuse("NoSpec", "the ledger holds no model spec: publish it first")
  const specHash = s.spec.hash
  const foreign = blocks.find((b) => b.dependsOn.length !== 1 || b.dependsOn[0] !== specHash)
  if (foreign) return refuse("NotGenesis", `block ${foreign.name} does not depend on the published spec ${specHash} alone`)
  return Either.right(blocks.filter((b) => !s.current.has(b.name)).map((b) => newEvent("BlockAppended", b)))
}

/** Publish an imported model's spec on chain A, once per name; the same name with another spec is refused. */
export const decidePublishImported = (s: ModelState, spec: ImportedSpec): Either.Either<ReadonlyArray<NewEvent>, ModelRefused> => {
  if (spec.name === BUILTIN_MODEL) return refuse("OtherModel", `${BUILTIN_MODEL} names the built-in model; import this checkpoint under another name`)
  const known = s.imported.get(spec.name)
  if (known === undefined) return Either.right([newEvent("ModelSpecPublished", { spec })])
  if (canonicalize(known.spec) === canonicalize(spec)) return nothing
  return refuse("OtherModel", `the ledger already holds a model named ${spec.name} (spec ${known.hash}) with other weights or files; import it under another name`)
}

/**
 * Append an imported model's blocks that are not on chain B yet, in one append: each named for a
 * part of that model and depending on its published spec alone. An import cut off after its spec,
 * or run twice, finishes without recording anything twice; other weights under the same name
 * (same config and tokenizer) are refused.
 */
export const decideAppendImported = (s: ModelState, model: string, blocks: ReadonlyArray<BlockAppendedData>): Either.Either<ReadonlyArray<NewEvent>, ModelRefused> => {
  const spec = s.imported.get(model)
  if (spec === undefined) return refuse("NoSpec", `the ledger holds no model named ${model}: publish its spec first`)
  const foreign = blocks.find((b) => splitImportedPart(b.name)?.model !== model || b.dependsOn.length !== 1 || b.dependsOn[0] !== spec.hash)
  if (foreign) return refuse("NotGenesis", `block ${foreign.name} is not a part of ${model} depending on its spec ${spec.hash} alone`)
  const other = blocks.find((b) => s.current.has(b.name) && s.current.get(b.name)!.payload !== b.payload)
  if (other) return refuse("OtherModel", `the ledger already holds ${other.name} with other weights; import this checkpoint under another name`)
  return Either.right(blocks.filter((b) => !s.current.has(b.name)).map((b) => newEvent("BlockAppended", b)))
}

export type TrainingOutcome = Omit<EventData<"ModelTrained">, "blocks">

/**
 * Record a training run: its blocks and its `ModelTrained`, in one atomic chain-B append. Each
 * block must improve the block that is current for its part now; if any part moved since the run
 * loaded the model, the result is stale and refused.
 */
export const decideRecordTraining = (
  s: ModelState,
  blocks: ReadonlyArray<BlockAppendedData>,
  outcome: TrainingOutcome
): Either.Either<ReadonlyArray<NewEvent>, ModelRefused> => {
  if (blocks.length === 0) return refuse("Empty", "a training result must hold at least one block")
  for (const b of blocks) {
    const base = s.current.get(b.name)?.block
    if (base === undefined || b.dependsOn[0] !== base)
      return refuse("StaleBase", `part ${b.name} is now at block ${base ?? "(none)"}, not the one this run trained from (${b.dependsOn[0]}); train again on the current model`)
  }
  return Either.right([...blocks.map((b) => newEvent("BlockAppended", b)), newEvent("ModelTrained", { ...outcome, blocks: blocks.map((b) => b.hash) })])
}
