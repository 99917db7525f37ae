/**
 * What a pipeline's coordinator and its stage workers say to each other: a work order (a step's
 * share for one stage: its layers' weights and its microbatches' inputs), the worker's answers
 * (ready, done with its gradients, or failed naming the stage at fault), and the activations and
 * gradients between stages. Each is a frame: a JSON header, then the floats as raw bytes.
 */
import { Either, ParseResult, Schema } from "effect"
import type { Gradients } from "../model/adamw.ts"
import type { FloatArray } from "../model/forward.ts"
import { ModelSpec } from "../model/spec.ts"
import { numel, type ModelWeights, type Part, type Tensor } from "../model/tensor.ts"
import { frame, unframe } from "../network/frames.ts"
import { TransportCounts } from "./step-report.ts"

/** A message of the pipeline's protocol that does not parse or does not add up. */
export class MalformedWork extends Schema.TaggedError<MalformedWork>()("MalformedWork", { message: Schema.String }) {}

const Count = Schema.Int.pipe(Schema.nonNegative())
const Positive = Schema.Int.pipe(Schema.positive())
const FloatType = Schema.Literal("f32", "f64")
type FloatType = typeof FloatType.Type

/** One float array in a frame's body, in order. */
const ArrayEntry = Schema.Struct({ part: Schema.String, tensor: Schema.String, dtype: FloatType, length: Count })
/** A weight tensor: its storage dtype and shape (its values travel as f32, as they are held). */
const WeightEntry = Schema.Struct({ part: Schema.String, tensor: Schema.String, storage: Schema.Literal("f32", "f16", "bf16"), shape: Schema.Array(Count) })

const MicrobatchInput = Schema.Struct({
  batch: Positive,
  seq: Positive,
  /** The first stage's. */
  tokens: Schema.optional(Schema.Array(Schema.Int)),
  /** The last stage's, with each position's weight in the whole batch's loss. */
  targets: Schema.optional(Schema.Array(Schema.Int)),
  weights: Schema.optional(Schema.Array(Schema.Number))
})
export type MicrobatchInput = typeof MicrobatchInput.Type

const OrderHeader = Schema.Struct({
  attempt: Schema.String,
  epoch: Schema.String,
  round: Schema.String,
  stage: Count,
  stages: Schema.Array(Schema.Struct({ start: Count, end: Count })),
  /** The node of each stage: a stage's breaker towards a neighbour is that node's. */
  nodes: Schema.Array(Schema.String),
  spec: ModelSpec,
  precision: FloatType,
  /** How long the worker gives the attempt before abandoning it. */
  deadlineMs: Positive,
  microbatches: Schema.Array(MicrobatchInput),
  weights: Schema.Array(WeightEntry)
})
export type StageOrder = Omit<typeof OrderHeader.Type, "weights"> & { readonly weights: ModelWeights }

const Answer = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("ready"), attempt: Schema.String, stage: Count }),
  Schema.Struct({ kind: Schema.Literal("done"), attempt: Schema.String, stage: Count, loss: Schema.Number, busyMs: Schema.Number, transport: TransportCounts, grads: Schema.Array(ArrayEntry) }),
  Schema.Struct({ kind: Schema.Literal("failed"), attempt: Schema.String, stage: Count, at: Count, message: Schema.String })
)
export type StageAnswer =
  | { readonly kind: "ready"; readonly attempt: string; readonly stage: number }
  | {
      readonly kind: "done"
      readonly attempt: string
      readonly stage: number
      readonly loss: number
      readonly busyMs: number
      /** What the stage's sends met in this attempt. */
      readonly transport: TransportCounts
      readonly grads: Gradients
    }
  | { readonly kind: "failed"; readonly attempt: string; readonly stage: number; readonly at: number; readonly message: string }

const TensorHeader = Schema.Struct({ attempt: Schema.String, mb: Count, dtype: FloatType })

const bytesOf = (x: FloatArray) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength)
const dtypeOf = (x: FloatArray): FloatType => (x instanceof Float64Array ? "f64" : "f32")
const width = (t: FloatType) => (t === "f64" ? 8 : 4)

/** The arrays laid end to end. */
const concat = (arrays: ReadonlyArray<FloatArray>): Uint8Array => {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.byteLength, 0))
  let at = 0
  for (const a of arrays) {
    out.set(bytesOf(a), at)
    at += a.byteLength
  }
  return out
}

/** The arrays a body holds, by the lengths and types its header gives; copied, so each is aligned. */
const split = (body: Uint8Array, entries: ReadonlyArray<{ readonly dtype: FloatType; readonly length: number }>): Either.Either<FloatArray[], MalformedWork> => {
  const total = entries.reduce((n, e) => n + e.length * width(e.dtype), 0)
  if (total !== body.length) return Either.left(new MalformedWork({ message: `the header lists ${total} bytes of floats, the body holds ${body.length}` }))
  const out: FloatArray[] = []
  let at = 0
  for (const e of entries) {
    const bytes = body.slice(at, at + e.length * width(e.dtype))
    out.push(e.dtype === "f64" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer))
    at += bytes.length
  }
  return Either.right(out)
}

const parse = <A, I>(schema: Schema.Schema<A, I>, what: string, bytes: Uint8Array): Either.Either<{ readonly header: A; readonly body: Uint8Array }, MalformedWork> =>
  Either.flatMap(
    Either.mapLeft(unframe(bytes), (e) => new MalformedWork({ message: `${what}: ${e.message}` })),
    ({ header, body }) =>
      Either.map(
        Either.mapLeft(Schema.decodeUnknownEither(schema)(header), (e) => new MalformedWork({ message: `${what}: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
        (h) => ({ header: h, body })
      )
  )

export const encodeOrder = (order: StageOrder): Uint8Array => {
  const tensors = [...order.weights.parts.values()].flatMap((p) => Object.entries(p.tensors).map(([tensor, t]) => ({ part: p.name, tensor, t })))
  const { weights: _, ...rest } = order
  const weights = tensors.map(({ part, tensor, t }) => ({ part, tensor, storage: t.dtype, shape: [...t.shape] }))
  return frame({ ...rest, weights }, concat(tensors.map(({ t }) => t.data)))
}

export const decodeOrder = (bytes: Uint8Array): Either.Either<StageOrder, MalformedWork> =>
  Either.flatMap(parse(OrderHeader, "a work order", bytes), ({ header, body }) =>
    Either.flatMap(
      split(
        body,
        header.weights.map((w) => ({ dtype: "f32" as const, length: numel(w.shape) }))
      ),
      (arrays) => {
        if (header.stage >= header.stages.length) return Either.left(new MalformedWork({ message: `a work order for stage ${header.stage} of ${header.stages.length}` }))
        if (header.nodes.length !== header.stages.length) return Either.left(new MalformedWork({ message: `a work order naming ${header.nodes.length} nodes for ${header.stages.length} stages` }))
        const parts = new Map<string, { name: string; tensors: Record<string, Tensor> }>()
        header.weights.forEach((w, i) => {
          const part = parts.get(w.part) ?? { name: w.part, tensors: {} }
          part.tensors[w.tensor] = { dtype: w.storage, shape: w.shape, data: arrays[i] as Float32Array }
          parts.set(w.part, part)
        })
        const { weights: _, ...rest } = header
        return Either.right({ ...rest, weights: { spec: header.spec, parts: parts as ReadonlyMap<string, Part> } })
      }
    )
  )

export const encodeAnswer = (answer: StageAnswer): Uint8Array => {
  if (answer.kind !== "done") return frame(answer)
  const entries = [...answer.grads].flatMap(([part, ts]) => Object.entries(ts).map(([tensor, x]) => ({ part, tensor, x: x as FloatArray })))
  return frame(
    { ...answer, grads: entries.map(({ part, tensor, x }) => ({ part, tensor, dtype: dtypeOf(x), length: x.length })) },
    concat(entries.map((e) => e.x))
  )
}

export const decodeAnswer = (bytes: Uint8Array): Either.Either<StageAnswer, MalformedWork> =>
  Either.flatMap(parse(Answer, "a stage's answer", bytes), ({ header, body }): Either.Either<StageAnswer, MalformedWork> => {
    if (header.kind !== "done") return Either.right(header)
    return Either.map(split(body, header.grads), (arrays) => {
      const grads = new Map<string, Record<string, FloatArray>>()
      header.grads.forEach((g, i) => grads.set(g.part, { ...grads.get(g.part), [g.tensor]: arrays[i]! }))
      return { ...header, grads }
    })
  })

/** A microbatch's activations or gradient, for one attempt of a step. */
export const encodeTensor = (attempt: string, mb: number, x: FloatArray): Uint8Array => frame({ attempt, mb, dtype: dtypeOf(x) }, bytesOf(x))

export const decodeTensor = (bytes: Uint8Array): Either.Either<{ readonly attempt: string; readonly mb: number; readonly x: FloatArray }, MalformedWork> =>
  Either.flatMap(parse(TensorHeader, "a tensor", bytes), ({ header, body }) =>
    Either.map(split(body, [{ dtype: header.dtype, length: Math.floor(body.length / width(header.dtype)) }]), ([x]) => ({ attempt: header.attempt, mb: header.mb, x: x! }))
  )
