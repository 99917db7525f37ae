/**
 * A checkpoint read into the ledger's parts: its config decoded into a family spec, its tensors
 * checked against the family's layout and its tokenizer against the vocabulary before anything is
 * read, then each part (embedding, per layer attention, router and experts, head) read tensor by
 * tensor in its stored dtype and encoded as a block payload, one part at a time: memory holds one
 * part, never the checkpoint. A NaN or infinity anywhere refuses the checkpoint, naming the tensor.
 */
import { Effect, Stream } from "effect"
import { decodeHfConfig, type FamilySpec } from "../domain/model/families/config.ts"
import { firstNonFinite, layoutProblem } from "../domain/model/families/checkpoint-fit.ts"
import { checkpointLayout } from "../domain/model/families/layout.ts"
import { loadTokenizer, type TextTokenizer } from "../domain/model/families/tokenizer.ts"
import { encodeStoredPart, type StStoredTensor } from "../domain/model/safetensors.ts"
import { refused, type CheckpointRefused, type CheckpointSource } from "../domain/ports/checkpoint-source.ts"

export type ImportedPart = {
  readonly part: string
  /** The block payload: the part's tensors, unconverted, with its name in the metadata. */
  readonly payload: Uint8Array
  /** The checkpoint bytes it holds. */
  readonly bytes: number
}

export type CheckpointPlan = {
  readonly spec: FamilySpec
  readonly tokenizer: TextTokenizer
  /** The parts in the ledger's order, read as they are pulled. */
  readonly parts: Stream.Stream<ImportedPart, CheckpointRefused>
}

/** What `source` holds, checked whole where that needs no tensor bytes; its parts are read as the stream is pulled. */
export const planCheckpoint = (source: CheckpointSource) =>
  Effect.gen(function* () {
    const spec = yield* decodeHfConfig(source.config)
    const problem = layoutProblem(spec, source.tensors)
    if (problem !== undefined) return yield* refused(problem)
    if (source.tokenizer === undefined) return yield* refused("the checkpoint has no tokenizer.json", "tokenizer.json")
    const tokenizer = yield* loadTokenizer(source.tokenizer, source.tokenizerConfig, spec.vocab)
    const partOf = ({ part, tensors }: ReturnType<typeof checkpointLayout>[number]) =>
      Effect.gen(function* () {
        const stored: Record<string, StStoredTensor> = Object.create(null)
        let bytes = 0
        for (const t of tensors) {
          const info = source.tensors.get(t.checkpointName)!
          const data = yield* source.read(t.checkpointName)
          const bad = firstNonFinite(info.dtype, data)
          if (bad !== undefined) return yield* refused(`tensor "${t.checkpointName}" (of ${part}) holds NaN or infinity at value ${bad}`, undefined, t.checkpointName)
          stored[t.name] = { dtype: info.dtype, shape: info.shape, bytes: data }
          bytes += data.length
        }
        return { part, payload: encodeStoredPart(part, stored), bytes } satisfies ImportedPart
      })
    return { spec, tokenizer, parts: Stream.mapEffect(Stream.fromIterable(checkpointLayout(spec)), partOf) } satisfies CheckpointPlan
  })
