import { Effect, Either, Schema } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import type { BlockAppendedData } from "../domain/ledger/events.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { signBlock } from "../domain/ledger/blocks.ts"
import { keyPairFromSeed } from "../domain/ledger/signing.ts"
import { ModelProjection, expertsPendingUpdate, pendingExpertUpdates, type ModelState } from "../domain/projections/model.ts"
import { decidePublishGenesis, decidePublishSpec } from "../domain/projections/model-deciders.ts"
import { partNames, parsePartName, validateSpec, type ModelSpec } from "../domain/model/spec.ts"
import { initWeights } from "../domain/model/init.ts"
import { decodePart, encodePart } from "../domain/model/safetensors.ts"
import { assembleWeights, type ModelWeights, type Part } from "../domain/model/tensor.ts"
import { GENESIS_CONTRIBUTOR_SEED, partHeader } from "../domain/model/blocks.ts"
import { foldStream, handleCommand } from "./command.ts"

/** The ledger holds no usable model yet. */
export class ModelUnavailable extends Schema.TaggedError<ModelUnavailable>()("ModelUnavailable", { message: Schema.String }) {}

/** Store each part's payload and sign a block for it, depending on `depsOf(name)`. Nothing is recorded. */
export const signParts = (parts: ReadonlyArray<Part>, depsOf: (name: string) => ReadonlyArray<string>, seed: string) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const contributor = keyPairFromSeed(seed).publicKey
    const blocks: BlockAppendedData[] = []
    for (const part of parts) {
      const bytes = encodePart(part)
      yield* blobs.put(bytes)
      blocks.push(signBlock(yield* partHeader(part, bytes, depsOf(part.name), contributor), seed))
    }
    return blocks
  })

/**
 * Finish what chain B already holds: give every expert version its `ExpertUpdated` on the
 * expert's own stream. Run after each chain-B append, and before model commands, so an
 * operation cut off by a crash is completed by the next one; never records anything twice.
 */
export const completeExpertUpdates = Effect.gen(function* () {
  const { state } = yield* foldStream("*", ModelProjection)
  const names = expertsPendingUpdate(state)
  yield* Effect.forEach(names, (name) => {
    const ref = parsePartName(name) as { readonly layer: number; readonly expert: number }
    return handleCommand({
      stream: Streams.expert(ref.layer, ref.expert),
      projection: ModelProjection,
      reads: "log",
      decide: (s) => Either.right(pendingExpertUpdates(s, name))
    })
    // Concurrent: one expert's stream does not wait for another's, and the store commits them together.
  }, { concurrency: "unbounded" })
  return names.length
})

/**
 * Publish the model spec and its deterministic genesis weights, one block per part, all parts in
 * one atomic append. Idempotent: a ledger that has them is left as it is, one cut off half-way is
 * finished, and one with a different spec is refused.
 */
export const publishGenesisModel = (spec: ModelSpec) =>
  Effect.gen(function* () {
    yield* validateSpec(spec)
    const specAppend = yield* handleCommand({ stream: Streams.chainA, projection: ModelProjection, decide: (s) => decidePublishSpec(s, spec) })
    const { state } = yield* foldStream("*", ModelProjection)
    const specHash = state.spec!.hash
    const missing = partNames(spec).filter((n) => !state.current.has(n))
    const weights = missing.length > 0 ? initWeights(spec) : undefined
    const blocks = yield* signParts(
      missing.map((n) => weights!.parts.get(n)!),
      () => [specHash],
      GENESIS_CONTRIBUTOR_SEED
    )
    const appended = yield* handleCommand({ stream: Streams.chainB, projection: ModelProjection, reads: "log", decide: (s) => decidePublishGenesis(s, blocks) })
    const updates = yield* completeExpertUpdates
    return { specHash, specPublished: specAppend !== undefined, published: appended?.envelopes.length ?? 0, completed: updates }
  })

export type LoadedModel = {
  readonly specHash: string
  readonly weights: ModelWeights
  /** Block hash of each part as loaded: what an answer is attributed to. */
  readonly blocks: ReadonlyMap<string, string>
}

/** The current model as the ledger defines it, each payload verified against its block. */
export const loadModel = Effect.flatMap(foldStream("*", ModelProjection), ({ state }) => loadModelOf(state))

/** The model that `state` (the model projection) says is current, its payloads read and verified. */
export const loadModelOf = (state: ModelState) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    if (!state.spec) return yield* new ModelUnavailable({ message: "the ledger holds no model yet: run `blyan init`" })
    const spec = state.spec.spec
    const parts: Part[] = []
    for (const name of partNames(spec)) {
      const current = state.current.get(name)
      if (!current) return yield* new ModelUnavailable({ message: `no block for part ${name}: run \`blyan init\`` })
      parts.push(yield* decodePart(yield* blobs.get(current.payload)))
    }
    const weights = yield* assembleWeights(spec, parts)
    return { specHash: state.spec.hash, weights, blocks: new Map([...state.current].map(([n, c]) => [n, c.block])) } satisfies LoadedModel
  })
