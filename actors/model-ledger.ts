import { Data, Effect, Either } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { newEvent, type BlockAppendedData, type NewEvent } from "../domain/ledger/events.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { signBlock } from "../domain/ledger/blocks.ts"
import { canonicalize } from "../domain/ledger/jcs.ts"
import { keyPairFromSeed } from "../domain/ledger/signing.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { partNames, parsePartName, validateSpec, type ModelSpec } from "../domain/model/spec.ts"
import { initWeights } from "../domain/model/init.ts"
import { decodePart, encodePart } from "../domain/model/safetensors.ts"
import { assembleWeights, type ModelWeights, type Part } from "../domain/model/tensor.ts"
import { GENESIS_CONTRIBUTOR_SEED, partHeader } from "../domain/model/blocks.ts"
import { foldStream } from "./command.ts"

export class ModelUnavailable extends Data.TaggedError("ModelUnavailable")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

const either = <A, E>(e: Either.Either<A, E>) => Either.match(e, { onLeft: Effect.fail, onRight: Effect.succeed })

/**
 * Append parts as signed blocks, all in one atomic chain-B append (payloads stored first), each
 * depending on `depsOf(name)`; for experts, the per-expert stream records why the version changed.
 */
export const appendParts = (
  parts: ReadonlyArray<Part>,
  depsOf: (name: string) => ReadonlyArray<string>,
  seed: string,
  previous: (name: string) => string | undefined,
  reason: string
) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const store = yield* EventStore
    const contributor = keyPairFromSeed(seed).publicKey
    const blocks: BlockAppendedData[] = []
    for (const part of parts) {
      const bytes = encodePart(part)
      yield* blobs.put(bytes)
      blocks.push(signBlock(yield* either(partHeader(part, bytes, depsOf(part.name), contributor)), seed))
    }
    yield* store.append(Streams.chainB, blocks.map((b) => newEvent("BlockAppended", b)), "any")
    yield* Effect.forEach(
      blocks,
      (b) => {
        const ref = parsePartName(b.name)
        if (ref?.kind !== "expert") return Effect.void
        const ev: NewEvent = newEvent("ExpertUpdated", { name: b.name, block: b.hash, previous: previous(b.name) ?? null, reason })
        return Effect.asVoid(store.append(Streams.expert(ref.layer, ref.expert), [ev], "any"))
      },
      { concurrency: "unbounded", discard: true }
    )
    return blocks
  })

/**
 * Publish the model spec and its deterministic genesis weights, one block per part, all parts in
 * one atomic append. Idempotent: a ledger that has them is left as it is, and one with a different
 * spec is refused.
 */
export const publishGenesisModel = (spec: ModelSpec) =>
  Effect.gen(function* () {
    yield* either(validateSpec(spec))
    const store = yield* EventStore
    let { state } = yield* foldStream("*", ModelProjection)
    if (state.spec && canonicalize(state.spec.spec) !== canonicalize(spec))
      return yield* new ModelUnavailable({ reason: `the ledger already holds model ${state.spec.spec.name} (spec ${state.spec.hash}); refusing another genesis` })
    if (!state.spec) {
      yield* store.append(Streams.chainA, [newEvent("ModelSpecPublished", { spec })], "any")
      state = (yield* foldStream("*", ModelProjection)).state
    }
    const specHash = state.spec!.hash
    const missing = partNames(spec).filter((n) => !state.current.has(n))
    if (missing.length === 0) return { specHash, published: 0 }
    const weights = initWeights(spec)
    const parts = missing.map((n) => weights.parts.get(n)!)
    const blocks = yield* appendParts(parts, () => [specHash], GENESIS_CONTRIBUTOR_SEED, () => undefined, "genesis weights from the published spec")
    return { specHash, published: blocks.length }
  })

export type LoadedModel = {
  readonly specHash: string
  readonly weights: ModelWeights
  /** Block hash of each part as loaded: what an answer is attributed to. */
  readonly blocks: ReadonlyMap<string, string>
}

/** The current model as the ledger defines it, each payload verified against its block. */
export const loadModel = Effect.gen(function* () {
  const blobs = yield* BlobStore
  const { state } = yield* foldStream("*", ModelProjection)
  if (!state.spec) return yield* new ModelUnavailable({ reason: "the ledger holds no model yet: run `blyan init`" })
  const spec = state.spec.spec
  const parts: Part[] = []
  for (const name of partNames(spec)) {
    const current = state.current.get(name)
    if (!current) return yield* new ModelUnavailable({ reason: `no block for part ${name}: run \`blyan init\`` })
    parts.push(yield* either(decodePart(yield* blobs.get(current.payload))))
  }
  const weights = yield* either(assembleWeights(spec, parts))
  return { specHash: state.spec.hash, weights, blocks: new Map([...state.current].map(([n, c]) => [n, c.block])) } satisfies LoadedModel
})
