/**
 * A checkpoint read into the ledger's parts: its config decoded into a family spec, its tensors
 * checked against the family's layout and its tokenizer against the vocabulary before anything is
 * read, then each part (embedding, per layer attention, router and experts, head) read tensor by
 * tensor in its stored dtype into a block payload, one part at a time: memory holds one part,
 * never the checkpoint. A NaN or infinity anywhere refuses the checkpoint, naming the tensor.
 */
import { Effect, Either, Schema } from "effect"
import { BlobStore, type BlobCorrupted, type BlobNotFound, type BlobStoreFailure } from "../domain/ports/blob-store.ts"
import type { BlockAppendedData } from "../domain/ledger/events.ts"
import { signBlock } from "../domain/ledger/blocks.ts"
import { keyPairFromSeed } from "../domain/ledger/signing.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { blockHeader } from "../domain/model/blocks.ts"
import { ImportedSpec, importedPart } from "../domain/model/families/imported-spec.ts"
import { requireWriter } from "../domain/projections/contributors.ts"
import { importedModelOf, ModelProjection } from "../domain/projections/model.ts"
import { decideAppendImported, decidePublishImported } from "../domain/projections/model-deciders.ts"
import { foldStream, handleCommand } from "./command.ts"
import { BlockWritersView, requireKnownWriter } from "./contributors.ts"
import { decodeHfConfig, type FamilySpec } from "../domain/model/families/config.ts"
import { firstNonFinite, layoutProblem } from "../domain/model/families/checkpoint-fit.ts"
import { checkpointLayout } from "../domain/model/families/layout.ts"
import { loadTokenizer, type TextTokenizer } from "../domain/model/families/tokenizer.ts"
import { fromSt, storedPartLayout } from "../domain/model/safetensors.ts"
import type { DType } from "../domain/model/tensor.ts"
import { refused, type CheckpointRefused, type CheckpointSource, type ModelParts } from "../domain/ports/checkpoint-source.ts"

/** A part as it is read: its block payload (only valid until the sink returns), the checkpoint bytes it holds, and its tensors. */
export type ReadPart = {
  readonly part: string
  readonly payload: Uint8Array
  readonly bytes: number
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly dtype: DType; readonly shape: ReadonlyArray<number> }>
}

/** What is done with each part as it is read: stored, most often. */
export type PartSink<A, E, R> = (part: ReadPart) => Effect.Effect<A, E, R>

export type CheckpointPlan = {
  readonly spec: FamilySpec
  readonly tokenizer: TextTokenizer
  /** Each part in the ledger's order, read, checked and handed to `sink`: what it gave for each. */
  readonly readParts: <A, E, R>(sink: PartSink<A, E, R>) => Effect.Effect<ReadonlyArray<A>, CheckpointRefused | E, R>
}

/** What `source` holds, checked whole where that needs no tensor bytes; its parts are read by `readParts`. */
export const planCheckpoint = (source: CheckpointSource) =>
  Effect.gen(function* () {
    const spec = yield* decodeHfConfig(source.config)
    const problem = layoutProblem(spec, source.tensors)
    if (problem !== undefined) return yield* refused(problem)
    if (source.tokenizer === undefined) return yield* refused("the checkpoint has no tokenizer.json", "tokenizer.json")
    const tokenizer = yield* loadTokenizer(source.tokenizer, source.tokenizerConfig, spec.vocab)
    const parts = checkpointLayout(spec).map(({ part, tensors }) => ({
      part,
      tensors,
      layout: storedPartLayout(part, Object.fromEntries(tensors.map((t) => [t.name, source.tensors.get(t.checkpointName)!])))
    }))
    const readParts = <A, E, R>(sink: PartSink<A, E, R>) =>
      Effect.gen(function* () {
        // One buffer, the largest part's size, filled in place by the reads for every part: fresh
        // buffers of this size cost more in page faults than the reads themselves.
        const scratch = new Uint8Array(Math.max(...parts.map((p) => p.layout.size)))
        const out: A[] = []
        for (const { part, tensors, layout } of parts) {
          const payload = scratch.subarray(0, layout.size)
          payload.set(layout.head)
          for (const t of tensors) {
            const [begin, end] = layout.ranges.get(t.name)!
            const data = payload.subarray(begin, end)
            yield* source.readInto(t.checkpointName, data)
            const bad = firstNonFinite(source.tensors.get(t.checkpointName)!.dtype, data)
            if (bad !== undefined) return yield* refused(`tensor "${t.checkpointName}" (of ${part}) holds NaN or infinity at value ${bad}`, undefined, t.checkpointName)
          }
          const stored = tensors.map((t) => ({ name: t.name, dtype: fromSt[source.tensors.get(t.checkpointName)!.dtype], shape: t.shape }))
          out.push(yield* sink({ part, payload, bytes: layout.size - layout.head.length, tensors: stored }))
        }
        return out
      })
    return { spec, tokenizer, readParts } satisfies CheckpointPlan
  })

/** Who signs an import's blocks: a contributor key, registered first when `register` is given, else already known to the ledger. */
export type ImportSigner<E, R> = { readonly seed: string; readonly register?: Effect.Effect<unknown, E, R> }

/** What an import (or its repetition) recorded. */
export type ImportReport = {
  readonly name: string
  readonly spec: ImportedSpec
  readonly specHash: string
  readonly blocks: number
  /** Blocks this run appended: fewer than `blocks` when an earlier, cut-off import had appended some. */
  readonly appended: number
  readonly bytes: number
}

/**
 * Import `source` as model `name`: every part read, checked and stored as a blob first (a bad
 * checkpoint is refused before anything is recorded), then the spec published on chain A (with
 * the blobs of its config and tokenizer files) and one block per part appended to chain B in one
 * append, each depending on that spec and signed by `signer`. Idempotent: the same import again
 * records nothing, one cut off after its spec is finished; the same name with other contents is
 * refused.
 */
export const importCheckpoint = <E = never, R = never>(source: CheckpointSource, name: string, signer: ImportSigner<E, R>, onPart: (bytes: number) => void = () => {}) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const contributor = keyPairFromSeed(signer.seed).publicKey
    if (signer.register === undefined) yield* requireKnownWriter(contributor)
    const plan = yield* planCheckpoint(source)
    const files: Record<string, string> = {}
    for (const [file, bytes] of Object.entries(source.files)) files[file] = yield* blobs.put(bytes)
    const spec = yield* Either.mapLeft(Schema.decodeUnknownEither(ImportedSpec)({ ...plan.spec, name, files }), () => refused(`${JSON.stringify(name)} cannot name a model: letters, digits, ".", "_" and "-", 64 at most`))
    // A name the ledger refuses is refused before the parts are read and anything is recorded.
    yield* decidePublishImported((yield* foldStream("*", ModelProjection)).state, spec)
    const stored = yield* plan.readParts((p) =>
      Effect.map(blobs.put(p.payload), (payload) => {
        onPart(p.bytes)
        return { part: p.part, payload, size: p.payload.length, bytes: p.bytes, tensors: p.tensors }
      })
    )
    if (signer.register !== undefined) yield* signer.register
    yield* handleCommand({ stream: Streams.chainA, projection: ModelProjection, decide: (s) => decidePublishImported(s, spec) })
    const specHash = (yield* foldStream("*", ModelProjection)).state.imported.get(name)!.hash
    const blocks: BlockAppendedData[] = []
    for (const p of stored) blocks.push(signBlock(yield* blockHeader({ ...p, name: importedPart(name, p.part), dependsOn: [specHash], contributor }), signer.seed))
    const appended = yield* handleCommand({
      stream: Streams.chainB,
      projection: BlockWritersView,
      reads: "log",
      decide: (s) => Either.flatMap(requireWriter(s.contributors, contributor), () => decideAppendImported(s.model, name, blocks))
    })
    return { name, spec, specHash, blocks: blocks.length, appended: appended?.envelopes.length ?? 0, bytes: stored.reduce((n, p) => n + p.bytes, 0) } satisfies ImportReport
  })

/** An imported model as the ledger holds it, its blobs read (and verified) as an export asks for them. */
export const modelParts = (name: string) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const { state } = yield* foldStream("*", ModelProjection)
    const model = yield* Either.mapLeft(importedModelOf(state, name), (why) => refused(why))
    const files: Record<string, Uint8Array> = {}
    for (const [file, hash] of Object.entries(model.spec.files)) files[file] = yield* blobs.get(hash)
    const part = (p: string): Effect.Effect<Uint8Array, CheckpointRefused | BlobNotFound | BlobCorrupted | BlobStoreFailure> => {
      const current = state.current.get(importedPart(name, p))
      return current === undefined ? Effect.fail(refused(`the ledger holds no block for ${importedPart(name, p)}`)) : blobs.get(current.payload)
    }
    return { spec: model.spec, files, part } satisfies ModelParts<unknown>
  })
