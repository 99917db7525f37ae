import { Either, Schema } from "effect"
import type { ModelSpec } from "./spec.ts"
import { parsePartName, partNames } from "./spec.ts"

/** Storage dtype of a tensor; values are always held (and computed) as f32. */
export type DType = "f32" | "f16" | "bf16"

export interface Tensor {
  readonly dtype: DType
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array
}

/** One block's worth of weights: a named set of tensors. `name` is the ledger block name. */
export interface Part {
  readonly name: string
  readonly tensors: Readonly<Record<string, Tensor>>
}

/** A whole model: its spec and every part by name. */
export interface ModelWeights {
  readonly spec: ModelSpec
  readonly parts: ReadonlyMap<string, Part>
}

export const numel = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1)

/** The tensors a part must hold, in a fixed order, with their shapes. */
export const partLayout = (spec: ModelSpec, name: string): ReadonlyArray<readonly [string, ReadonlyArray<number>]> | undefined => {
  const ref = parsePartName(name)
  if (ref === undefined) return undefined
  const d = spec.dModel
  switch (ref.kind) {
    case "embedding":
      return [["tok", [spec.vocab, d]], ["pos", [spec.context, d]]]
    case "attention":
      if (ref.layer >= spec.layers) return undefined
      return [["ln.weight", [d]], ["ln.bias", [d]], ["wq", [d, d]], ["wk", [d, d]], ["wv", [d, d]], ["wo", [d, d]]]
    case "router":
      if (ref.layer >= spec.layers) return undefined
      return [["ln.weight", [d]], ["ln.bias", [d]], ["w", [d, spec.experts]]]
    case "expert":
      if (ref.layer >= spec.layers || ref.expert >= spec.experts) return undefined
      return [["w1", [d, spec.dFF]], ["b1", [spec.dFF]], ["w2", [spec.dFF, d]], ["b2", [d]]]
    case "head":
      return [["ln.weight", [d]], ["ln.bias", [d]], ["w", [d, spec.vocab]]]
  }
}

/** Weights that do not fit the spec: a missing or unknown part or tensor, or a wrong shape. */
export class WeightsMismatch extends Schema.TaggedError<WeightsMismatch>()("WeightsMismatch", { part: Schema.String, message: Schema.String }) {
  static of({ part, reason }: { readonly part: string; readonly reason: string }): WeightsMismatch {
    return new WeightsMismatch({ part, message: `part ${part}: ${reason}` })
  }
}

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.length === b.length && a.every((x, i) => x === b[i])

/** Checks that a part has exactly the tensors its layout names, with those shapes and sizes. */
export const validatePart = (spec: ModelSpec, part: Part): Either.Either<Part, WeightsMismatch> => {
  const fail = (reason: string) => Either.left(WeightsMismatch.of({ part: part.name, reason }))
  const layout = partLayout(spec, part.name)
  if (layout === undefined) return fail(`not a part of ${spec.name}`)
  const expected = new Set(layout.map(([n]) => n))
  for (const n of Object.keys(part.tensors)) if (!expected.has(n)) return fail(`unexpected tensor ${n}`)
  for (const [n, shape] of layout) {
    const t = part.tensors[n]
    if (t === undefined) return fail(`missing tensor ${n}`)
    if (!sameShape(t.shape, shape)) return fail(`tensor ${n} has shape [${t.shape}], expected [${shape}]`)
    if (t.data.length !== numel(shape)) return fail(`tensor ${n} holds ${t.data.length} values, expected ${numel(shape)}`)
  }
  return Either.right(part)
}

/** Assembles a model from parts (e.g. blocks read from the ledger), refusing any mismatch. */
export const assembleWeights = (spec: ModelSpec, parts: Iterable<Part>): Either.Either<ModelWeights, WeightsMismatch> => {
  const map = new Map<string, Part>()
  for (const p of parts) {
    const v = validatePart(spec, p)
    if (Either.isLeft(v)) return Either.left(v.left)
    if (map.has(p.name)) return Either.left(WeightsMismatch.of({ part: p.name, reason: "given twice" }))
    map.set(p.name, p)
  }
  for (const n of partNames(spec)) if (!map.has(n)) return Either.left(WeightsMismatch.of({ part: n, reason: "missing" }))
  return Either.right({ spec, parts: map })
}

/** The part's tensor; callers have validated the weights, so absence is a programming error. */
export const tensorOf = (weights: ModelWeights, part: string, tensor: string): Tensor => {
  const t = weights.parts.get(part)?.tensors[tensor]
  if (t === undefined) throw new Error(`weights lack ${part}/${tensor}`)
  return t
}

export const replacePart = (weights: ModelWeights, part: Part): ModelWeights => {
  const parts = new Map(weights.parts)
  parts.set(part.name, part)
  return { spec: weights.spec, parts }
}

