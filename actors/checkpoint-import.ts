/**
 * A checkpoint read into the ledger's parts: its config decoded into a family spec, its tensors
 * checked against the family's layout and its tokenizer against the vocabulary before anything is
 * read, then each part (embedding, per layer attention, router and experts, head) read tensor by
 * tensor in its stored dtype into a block payload, one part at a time: memory holds one part,
 * never the checkpoint. A NaN or infinity anywhere refuses the checkpoint, naming the tensor.
 */
import { Effect } from "effect"
import { decodeHfConfig, type FamilySpec } from "../domain/model/families/config.ts"
import { firstNonFinite, layoutProblem } from "../domain/model/families/checkpoint-fit.ts"
import { checkpointLayout } from "../domain/model/families/layout.ts"
import { loadTokenizer, type TextTokenizer } from "../domain/model/families/tokenizer.ts"
import { storedPartLayout } from "../domain/model/safetensors.ts"
import { refused, type CheckpointRefused, type CheckpointSource } from "../domain/ports/checkpoint-source.ts"

/** What is done with each part's block payload as it is read (stored, most often); the payload is only valid until it returns. */
export type PartSink<A, E, R> = (part: string, payload: Uint8Array, bytes: number) => Effect.Effect<A, E, R>

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
          out.push(yield* sink(part, payload, layout.size - layout.head.length))
        }
        return out
      })
    return { spec, tokenizer, readParts } satisfies CheckpointPlan
  })
