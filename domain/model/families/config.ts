/**
 * A Hugging Face `config.json` of an open Mixture-of-Experts checkpoint (Mixtral or Qwen3-MoE),
 * decoded into the few numbers the model needs. Whatever this code does not compute (dense layers,
 * biases, sliding windows, scaled rotary embeddings, another activation) is refused in words that
 * name the field, never silently run as something else.
 */
import { Either, ParseResult, Schema } from "effect"

const Size = Schema.Int.pipe(Schema.positive())

export const FamilySpec = Schema.Struct({
  family: Schema.Literal("mixtral", "qwen3_moe"),
  vocab: Size,
  hidden: Size,
  layers: Size,
  heads: Size,
  kvHeads: Size,
  headDim: Size,
  experts: Size,
  topK: Size,
  expertFF: Size,
  ropeTheta: Schema.Number.pipe(Schema.positive()),
  rmsEps: Schema.Number.pipe(Schema.positive()),
  /** Whether the top-k routing weights are renormalised to sum to 1. */
  normTopK: Schema.Boolean,
  /** Whether the output projection is the embedding matrix (no `lm_head.weight` in the checkpoint). */
  tieEmbeddings: Schema.Boolean,
  context: Size,
  dtype: Schema.Literal("f32", "f16", "bf16")
})
export type FamilySpec = typeof FamilySpec.Type
export type Family = FamilySpec["family"]

export class UnsupportedCheckpoint extends Schema.TaggedError<UnsupportedCheckpoint>()("UnsupportedCheckpoint", { message: Schema.String }) {}

type Raw = Readonly<Record<string, unknown>>
type Read<A> = Either.Either<A, UnsupportedCheckpoint>

const FAMILIES = ["mixtral", "qwen3_moe"] as const
const ARCHITECTURE: Record<Family, string> = { mixtral: "MixtralForCausalLM", qwen3_moe: "Qwen3MoeForCausalLM" }
const DTYPES: Readonly<Record<string, FamilySpec["dtype"]>> = { float32: "f32", float16: "f16", bfloat16: "bf16" }
/** Sizes index typed arrays and safetensors offsets: keep each one an int32. */
const MAX_SIZE = 2 ** 31 - 1

const refuse = (reason: string) => Either.left(new UnsupportedCheckpoint({ message: `config.json: ${reason}` }))

/** A JSON value as a message shows it, without ever throwing (no JSON.stringify of arbitrary input). */
const show = (v: unknown): string => {
  if (typeof v === "string") return JSON.stringify(v)
  if (typeof v === "number" || typeof v === "boolean") return String(v)
  if (v === null) return "null"
  if (Array.isArray(v)) return v.length <= 4 && v.every((x) => typeof x !== "object" || x === null) ? `[${v.map(show).join(", ")}]` : "an array"
  return typeof v === "object" ? "an object" : typeof v
}

const has = (raw: Raw, key: string) => Object.hasOwn(raw, key) && raw[key] !== undefined
const get = (raw: Raw, key: string): unknown => (Object.hasOwn(raw, key) ? raw[key] : undefined)

/** A required size: absent is refused rather than taking a transformers class default, which describes some other model. */
const size = (raw: Raw, key: string): Read<number> => {
  if (!has(raw, key)) return refuse(`${key} is missing`)
  const v = get(raw, key)
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) return refuse(`${key} must be a positive integer, got ${show(v)}`)
  if (v > MAX_SIZE) return refuse(`${key} ${v} exceeds ${MAX_SIZE}`)
  return Either.right(v)
}

const optionalSize = (raw: Raw, key: string): Read<number | undefined> =>
  get(raw, key) === undefined || get(raw, key) === null ? Either.right(undefined) : size(raw, key)

const positiveNumber = (raw: Raw, key: string, fallback: number): Read<number> => {
  const v = get(raw, key)
  if (v === undefined) return Either.right(fallback)
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) return refuse(`${key} must be a positive number, got ${show(v)}`)
  return Either.right(v)
}

const bool = (raw: Raw, key: string, fallback: boolean): Read<boolean> => {
  const v = get(raw, key)
  if (v === undefined) return Either.right(fallback)
  if (typeof v !== "boolean") return refuse(`${key} must be true or false, got ${show(v)}`)
  return Either.right(v)
}

const familyOf = (raw: Raw): Read<Family> => {
  const t = get(raw, "model_type")
  if (t === undefined) return refuse(`model_type is missing (supported MoE families: ${FAMILIES.join(", ")})`)
  const hit = FAMILIES.find((f) => f === t)
  if (hit === undefined) return refuse(`model_type ${show(t)} is not a supported MoE family (${FAMILIES.join(", ")})`)
  return Either.right(hit)
}

/** Another head on the same body (e.g. sequence classification) names other tensors: only the causal LM is imported. */
const checkArchitectures = (raw: Raw, family: Family): Read<void> => {
  const a = get(raw, "architectures")
  if (a === undefined || a === null) return Either.right(undefined)
  if (!Array.isArray(a) || !a.every((x) => typeof x === "string")) return refuse(`architectures must be a list of class names, got ${show(a)}`)
  if (!a.includes(ARCHITECTURE[family])) return refuse(`architectures ${show(a)} does not include ${ARCHITECTURE[family]}`)
  return Either.right(undefined)
}

const dtypeOf = (raw: Raw): Read<FamilySpec["dtype"]> => {
  // Newer transformers write `dtype`, older ones `torch_dtype`; bf16 is what both families ship in.
  const key = get(raw, "dtype") !== undefined && get(raw, "dtype") !== null ? "dtype" : "torch_dtype"
  const v = get(raw, key)
  if (v === undefined || v === null) return Either.right("bf16")
  const d = typeof v === "string" && Object.hasOwn(DTYPES, v) ? DTYPES[v] : undefined
  if (d === undefined) return refuse(`${key} ${show(v)} is not one of ${Object.keys(DTYPES).join(", ")}`)
  return Either.right(d)
}

/** rope_theta, or the theta of a transformers-v5 `rope_parameters` of the default (unscaled) type. */
const ropeThetaOf = (raw: Raw, family: Family): Read<number> => {
  // transformers' class defaults: MixtralConfig.default_theta 1e6, Qwen3MoeConfig inherits 1e4 (real Qwen3 configs state 1e6).
  const fallback = family === "mixtral" ? 1e6 : 1e4
  const scaling = get(raw, "rope_scaling")
  if (scaling !== undefined && scaling !== null) return refuse(`rope_scaling must be null (scaled rotary embeddings are not supported), got ${show(scaling)}`)
  const params = get(raw, "rope_parameters")
  if (params === undefined || params === null) return positiveNumber(raw, "rope_theta", fallback)
  if (typeof params !== "object" || Array.isArray(params)) return refuse(`rope_parameters must be an object, got ${show(params)}`)
  const p = params as Raw
  const type = get(p, "rope_type") ?? "default"
  if (type !== "default") return refuse(`rope_parameters.rope_type ${show(type)} is not supported (only "default")`)
  const theta = get(p, "rope_theta")
  if (theta === undefined) return positiveNumber(raw, "rope_theta", fallback)
  if (typeof theta !== "number" || !Number.isFinite(theta) || theta <= 0) return refuse(`rope_parameters.rope_theta must be a positive number, got ${show(theta)}`)
  return Either.right(theta)
}

/** What the Qwen3-MoE code paths would run differently: dense MLP layers and a sliding window. */
const checkQwen3Only = (raw: Raw): Read<void> => {
  const mlpOnly = get(raw, "mlp_only_layers")
  if (mlpOnly !== undefined && mlpOnly !== null && !(Array.isArray(mlpOnly) && mlpOnly.length === 0)) {
    return refuse(`mlp_only_layers ${show(mlpOnly)} is not supported (dense MLP layers are not implemented; expected [])`)
  }
  const step = get(raw, "decoder_sparse_step")
  if (step !== undefined && step !== null && step !== 1) {
    return refuse(`decoder_sparse_step ${show(step)} is not supported (dense MLP layers are not implemented; expected 1)`)
  }
  const sliding = get(raw, "use_sliding_window")
  if (sliding !== undefined && typeof sliding !== "boolean") return refuse(`use_sliding_window must be true or false, got ${show(sliding)}`)
  const window = get(raw, "sliding_window")
  // transformers drops sliding_window unless use_sliding_window is true: only that pair changes the attention.
  if (sliding === true && window !== undefined && window !== null) {
    return refuse(`sliding_window ${show(window)} with use_sliding_window true is not supported (only full causal attention)`)
  }
  return Either.right(undefined)
}

/** Mixtral's window changes nothing when it spans the whole context (sequences never exceed max_position_embeddings). */
const checkMixtralWindow = (raw: Raw, context: number): Read<void> => {
  const window = get(raw, "sliding_window")
  if (window === undefined || window === null) return Either.right(undefined)
  if (typeof window !== "number" || !Number.isInteger(window) || window <= 0) return refuse(`sliding_window must be a positive integer or null, got ${show(window)}`)
  if (window < context) return refuse(`sliding_window ${window} is smaller than max_position_embeddings ${context} (sliding-window attention is not supported)`)
  return Either.right(undefined)
}

/** The explicit head_dim, else hidden_size / num_attention_heads (transformers floors it; a remainder is refused here). */
const headDimOf = (raw: Raw, hidden: number, heads: number): Read<number> =>
  Either.flatMap(optionalSize(raw, "head_dim"), (explicit) => {
    if (explicit === undefined && hidden % heads !== 0) {
      return refuse(`head_dim is missing and hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`)
    }
    const headDim = explicit ?? hidden / heads
    // rotate_half pairs dimension i with i + headDim/2.
    if (headDim % 2 !== 0) return refuse(`head_dim ${headDim} must be even for rotary embeddings`)
    return Either.right(headDim)
  })

/** Decodes a parsed `config.json` into the spec of a supported MoE family, or says in words what is not supported. */
export const decodeHfConfig = (json: unknown): Either.Either<FamilySpec, UnsupportedCheckpoint> =>
  Either.gen(function* () {
    if (typeof json !== "object" || json === null || Array.isArray(json)) return yield* refuse(`expected a JSON object, got ${show(json)}`)
    const raw = json as Raw
    const family = yield* familyOf(raw)
    yield* checkArchitectures(raw, family)
    const mixtral = family === "mixtral"
    const expertsKey = mixtral ? "num_local_experts" : "num_experts"
    const ffKey = mixtral ? "intermediate_size" : "moe_intermediate_size"

    const vocab = yield* size(raw, "vocab_size")
    const hidden = yield* size(raw, "hidden_size")
    const layers = yield* size(raw, "num_hidden_layers")
    const heads = yield* size(raw, "num_attention_heads")
    // MixtralConfig turns a null num_key_value_heads into num_attention_heads (plain multi-head attention).
    const kvHeads = mixtral && get(raw, "num_key_value_heads") === null ? heads : yield* size(raw, "num_key_value_heads")
    if (heads % kvHeads !== 0) return yield* refuse(`num_key_value_heads ${kvHeads} does not divide num_attention_heads ${heads}`)
    const headDim = yield* headDimOf(raw, hidden, heads)
    const experts = yield* size(raw, expertsKey)
    const topK = yield* size(raw, "num_experts_per_tok")
    if (topK > experts) return yield* refuse(`num_experts_per_tok ${topK} exceeds ${expertsKey} ${experts}`)
    const expertFF = yield* size(raw, ffKey)
    const context = yield* size(raw, "max_position_embeddings")

    const act = get(raw, "hidden_act") ?? "silu"
    if (act !== "silu") return yield* refuse(`hidden_act ${show(act)} is not supported (only "silu")`)
    if (yield* bool(raw, "attention_bias", false)) return yield* refuse("attention_bias true is not supported (attention projections without bias only)")
    if (mixtral) yield* checkMixtralWindow(raw, context)
    else yield* checkQwen3Only(raw)

    const ropeTheta = yield* ropeThetaOf(raw, family)
    const rmsEps = yield* positiveNumber(raw, "rms_norm_eps", mixtral ? 1e-5 : 1e-6)
    // Mixtral always renormalises its top-k weights; Qwen3-MoE only when norm_topk_prob (class default false).
    const normTopK = mixtral ? true : yield* bool(raw, "norm_topk_prob", false)
    const tieEmbeddings = yield* bool(raw, "tie_word_embeddings", false)
    const dtype = yield* dtypeOf(raw)

    const spec = { family, vocab, hidden, layers, heads, kvHeads, headDim, experts, topK, expertFF, ropeTheta, rmsEps, normTopK, tieEmbeddings, context, dtype }
    // The checks above imply the schema; decoding again keeps the two from drifting apart.
    return yield* Either.mapLeft(
      Schema.decodeUnknownEither(FamilySpec)(spec),
      (e) => new UnsupportedCheckpoint({ message: `config.json: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })
    )
  })
