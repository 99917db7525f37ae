import { Either, ParseResult, Schema } from "effect"

/** The `blyan-moe` model family: a byte-level MoE decoder; sizes are part of the ledger. */
export const ModelSpec = Schema.Struct({
  family: Schema.Literal("blyan-moe"),
  name: Schema.String.pipe(Schema.minLength(1)),
  vocab: Schema.Literal(256),
  context: Schema.Int.pipe(Schema.positive()),
  dModel: Schema.Int.pipe(Schema.positive()),
  heads: Schema.Int.pipe(Schema.positive()),
  layers: Schema.Int.pipe(Schema.positive()),
  experts: Schema.Int.pipe(Schema.positive()),
  topK: Schema.Int.pipe(Schema.positive()),
  dFF: Schema.Int.pipe(Schema.positive()),
  seed: Schema.Int,
  dtype: Schema.Literal("f32", "f16", "bf16")
})
export type ModelSpec = typeof ModelSpec.Type

/**
 * The built-in genesis model: small enough that a few hundred training steps on two CPU cores
 * take minutes (about 1.3M parameters, 0.5M active per token).
 */
export const defaultSpec: ModelSpec = {
  family: "blyan-moe",
  name: "blyan-moe-tiny",
  vocab: 256,
  context: 64,
  dModel: 128,
  heads: 4,
  layers: 4,
  experts: 8,
  topK: 2,
  dFF: 256,
  seed: 1,
  dtype: "f32"
}

/** A spec whose fields are each well-typed but do not fit together (or are too large to run). */
export class InvalidModelSpec extends Schema.TaggedError<InvalidModelSpec>()("InvalidModelSpec", { message: Schema.String }) {}

/** Bounds that keep one part's tensors addressable as a single typed array (< 2^31 elements). */
const MAX_DIM = 65_536
const MAX_ELEMENTS = 2 ** 31 - 1

/** Checks the cross-field rules that the Schema alone cannot express. */
export const validateSpec = (spec: ModelSpec): Either.Either<ModelSpec, InvalidModelSpec> => {
  const fail = (reason: string) => Either.left(new InvalidModelSpec({ message: `invalid model spec: ${reason}` }))
  if (spec.dModel % spec.heads !== 0) return fail(`dModel ${spec.dModel} is not divisible by heads ${spec.heads}`)
  if (spec.topK > spec.experts) return fail(`topK ${spec.topK} exceeds experts ${spec.experts}`)
  for (const k of ["context", "dModel", "heads", "layers", "experts", "dFF"] as const) {
    if (spec[k] > MAX_DIM) return fail(`${k} ${spec[k]} exceeds ${MAX_DIM}`)
  }
  if (spec.dModel * spec.dFF > MAX_ELEMENTS || spec.context * spec.dModel > MAX_ELEMENTS) {
    return fail("a tensor would exceed 2^31-1 elements")
  }
  if (!Number.isSafeInteger(spec.seed)) return fail(`seed ${spec.seed} is not a safe integer`)
  return Either.right(spec)
}

/** Decodes an untrusted value (e.g. a `ModelSpecPublished` payload) and validates it. */
export const decodeSpec = (input: unknown): Either.Either<ModelSpec, InvalidModelSpec> =>
  Schema.decodeUnknownEither(ModelSpec)(input).pipe(
    Either.mapLeft((e) => new InvalidModelSpec({ message: `invalid model spec: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
    Either.flatMap(validateSpec)
  )

export const headDim = (spec: ModelSpec): number => spec.dModel / spec.heads

// Part names are the block names used on the ledger.
export const EMBEDDING = "embedding"
export const HEAD = "head"
export const attentionPart = (layer: number): string => `layer${layer}.attention`
export const routerPart = (layer: number): string => `layer${layer}.router`
export const expertPart = (layer: number, expert: number): string => `layer${layer}.expert${expert}`

export type PartRef =
  | { readonly kind: "embedding" }
  | { readonly kind: "head" }
  | { readonly kind: "attention"; readonly layer: number }
  | { readonly kind: "router"; readonly layer: number }
  | { readonly kind: "expert"; readonly layer: number; readonly expert: number }

/** Parses a block name; undefined when it is not a part name of this family. */
export const parsePartName = (name: string): PartRef | undefined => {
  if (name === EMBEDDING) return { kind: "embedding" }
  if (name === HEAD) return { kind: "head" }
  const m = /^layer(0|[1-9]\d*)\.(attention|router|expert(0|[1-9]\d*))$/.exec(name)
  if (m === null) return undefined
  const layer = Number(m[1])
  if (m[2] === "attention") return { kind: "attention", layer }
  if (m[2] === "router") return { kind: "router", layer }
  return { kind: "expert", layer, expert: Number(m[3]) }
}

/** Every part of a model, in a fixed order: embedding, then per layer attention, router, experts, then head. */
export const partNames = (spec: ModelSpec): ReadonlyArray<string> => {
  const names = [EMBEDDING]
  for (let l = 0; l < spec.layers; l++) {
    names.push(attentionPart(l), routerPart(l))
    for (let e = 0; e < spec.experts; e++) names.push(expertPart(l, e))
  }
  names.push(HEAD)
  return names
}

/** Parameter count of the whole model (all experts) and of the path one token takes (top-k experts). */
export const parameterCounts = (spec: ModelSpec): { readonly total: number; readonly activePerToken: number } => {
  const d = spec.dModel
  const embedding = spec.vocab * d + spec.context * d
  const attention = 2 * d + 4 * d * d
  const router = 2 * d + d * spec.experts
  const expert = d * spec.dFF + spec.dFF + spec.dFF * d + d
  const head = 2 * d + d * spec.vocab
  const shared = embedding + head + spec.layers * (attention + router)
  return { total: shared + spec.layers * spec.experts * expert, activePerToken: shared + spec.layers * spec.topK * expert }
}
