import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { decodeHfConfig } from "../../../../domain/model/families/config.ts"
import { tinyMixtral, tinyMixtralConfig, tinyQwen3Moe, tinyQwen3MoeConfig } from "../../../support/family-weights.ts"

const refusal = (json: unknown): string => {
  const r = decodeHfConfig(json)
  if (Either.isRight(r)) throw new Error(`expected a refusal, got ${JSON.stringify(r.right)}`)
  expect(r.left._tag).toBe("UnsupportedCheckpoint")
  return r.left.message
}
const mixtral = (patch: Record<string, unknown>) => ({ ...tinyMixtralConfig, ...patch })
const qwen = (patch: Record<string, unknown>) => ({ ...tinyQwen3MoeConfig, ...patch })
const without = (config: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(config).filter(([k]) => k !== key))

describe("decoding a Hugging Face config.json", () => {
  it("decodes the tiny Mixtral and Qwen3-MoE configs to their specs", () => {
    expect(decodeHfConfig(tinyMixtralConfig)).toEqual(Either.right(tinyMixtral))
    expect(decodeHfConfig(tinyQwen3MoeConfig)).toEqual(Either.right(tinyQwen3Moe))
  })

  it("takes transformers' defaults for the optional fields", () => {
    const bareMixtral = ["rope_theta", "rms_norm_eps", "tie_word_embeddings", "torch_dtype", "sliding_window", "hidden_act"].reduce(without, tinyMixtralConfig)
    expect(decodeHfConfig(bareMixtral)).toEqual(Either.right({ ...tinyMixtral, ropeTheta: 1e6, rmsEps: 1e-5, normTopK: true, tieEmbeddings: false, dtype: "bf16" }))
    const bareQwen = ["rope_theta", "rms_norm_eps", "norm_topk_prob", "tie_word_embeddings", "torch_dtype", "mlp_only_layers", "decoder_sparse_step", "attention_bias"].reduce(
      without,
      tinyQwen3MoeConfig
    )
    expect(decodeHfConfig(bareQwen)).toEqual(Either.right({ ...tinyQwen3Moe, ropeTheta: 1e4, rmsEps: 1e-6, normTopK: false, tieEmbeddings: false, dtype: "bf16" }))
  })

  it("derives Mixtral's head_dim from hidden_size / num_attention_heads unless given, and Qwen3's the same way when absent", () => {
    expect(decodeHfConfig(mixtral({ head_dim: 6 }))).toEqual(Either.right({ ...tinyMixtral, headDim: 6 }))
    expect(decodeHfConfig(mixtral({ head_dim: null }))).toEqual(Either.right(tinyMixtral))
    expect(decodeHfConfig(without(tinyQwen3MoeConfig, "head_dim"))).toEqual(Either.right({ ...tinyQwen3Moe, headDim: 4 }))
  })

  it("reads the dtype from dtype (newer transformers) or torch_dtype, and a null num_key_value_heads as multi-head attention", () => {
    expect(decodeHfConfig(mixtral({ torch_dtype: "float32" }))).toEqual(Either.right({ ...tinyMixtral, dtype: "f32" }))
    expect(decodeHfConfig(qwen({ torch_dtype: undefined, dtype: "float16" }))).toEqual(Either.right({ ...tinyQwen3Moe, dtype: "f16" }))
    expect(decodeHfConfig(mixtral({ num_key_value_heads: null }))).toEqual(Either.right({ ...tinyMixtral, kvHeads: 4 }))
    expect(decodeHfConfig(mixtral({ tie_word_embeddings: true }))).toEqual(Either.right({ ...tinyMixtral, tieEmbeddings: true }))
  })

  it("accepts transformers v5's rope_parameters of the default type, and a Mixtral window as long as the context", () => {
    const v5 = qwen({ rope_theta: undefined, rope_parameters: { rope_type: "default", rope_theta: 5e5 } })
    expect(decodeHfConfig(v5)).toEqual(Either.right({ ...tinyQwen3Moe, ropeTheta: 5e5 }))
    expect(decodeHfConfig(mixtral({ sliding_window: 64 }))).toEqual(Either.right(tinyMixtral))
    expect(decodeHfConfig(qwen({ sliding_window: 4096, use_sliding_window: false }))).toEqual(Either.right(tinyQwen3Moe))
  })

  it("refuses each thing it does not implement, naming the field", () => {
    const cases: ReadonlyArray<[unknown, string]> = [
      [[1, 2], "config.json: expected a JSON object, got [1, 2]"],
      [{ ...tinyMixtralConfig, model_type: "llama" }, 'config.json: model_type "llama" is not a supported MoE family (mixtral, qwen3_moe)'],
      [without(tinyMixtralConfig, "model_type"), "config.json: model_type is missing (supported MoE families: mixtral, qwen3_moe)"],
      [mixtral({ architectures: ["MixtralForSequenceClassification"] }), 'config.json: architectures ["MixtralForSequenceClassification"] does not include MixtralForCausalLM'],
      [mixtral({ num_key_value_heads: 3 }), "config.json: num_key_value_heads 3 does not divide num_attention_heads 4"],
      [without(tinyMixtralConfig, "hidden_size"), "config.json: hidden_size is missing"],
      [without(tinyQwen3MoeConfig, "num_experts"), "config.json: num_experts is missing"],
      [without(tinyQwen3MoeConfig, "moe_intermediate_size"), "config.json: moe_intermediate_size is missing"],
      [without(tinyMixtralConfig, "num_local_experts"), "config.json: num_local_experts is missing"],
      [mixtral({ vocab_size: 0 }), "config.json: vocab_size must be a positive integer, got 0"],
      [mixtral({ num_hidden_layers: -2 }), "config.json: num_hidden_layers must be a positive integer, got -2"],
      [mixtral({ intermediate_size: 2.5 }), "config.json: intermediate_size must be a positive integer, got 2.5"],
      [qwen({ hidden_size: "16" }), 'config.json: hidden_size must be a positive integer, got "16"'],
      [mixtral({ num_experts_per_tok: 5 }), "config.json: num_experts_per_tok 5 exceeds num_local_experts 4"],
      [qwen({ num_experts_per_tok: 5 }), "config.json: num_experts_per_tok 5 exceeds num_experts 4"],
      [qwen({ mlp_only_layers: [0] }), "config.json: mlp_only_layers [0] is not supported (dense MLP layers are not implemented; expected [])"],
      [qwen({ decoder_sparse_step: 2 }), "config.json: decoder_sparse_step 2 is not supported (dense MLP layers are not implemented; expected 1)"],
      [qwen({ attention_bias: true }), "config.json: attention_bias true is not supported (attention projections without bias only)"],
      [mixtral({ attention_bias: true }), "config.json: attention_bias true is not supported (attention projections without bias only)"],
      [qwen({ use_sliding_window: true, sliding_window: 32 }), "config.json: sliding_window 32 with use_sliding_window true is not supported (only full causal attention)"],
      [mixtral({ sliding_window: 32 }), "config.json: sliding_window 32 is smaller than max_position_embeddings 64 (sliding-window attention is not supported)"],
      [mixtral({ rope_scaling: { type: "linear", factor: 2 } }), "config.json: rope_scaling must be null (scaled rotary embeddings are not supported), got an object"],
      [qwen({ rope_parameters: { rope_type: "yarn", factor: 4 } }), 'config.json: rope_parameters.rope_type "yarn" is not supported (only "default")'],
      [mixtral({ hidden_act: "gelu" }), 'config.json: hidden_act "gelu" is not supported (only "silu")'],
      [mixtral({ hidden_size: 18, head_dim: undefined }), "config.json: head_dim is missing and hidden_size 18 is not divisible by num_attention_heads 4"],
      [qwen({ head_dim: 5 }), "config.json: head_dim 5 must be even for rotary embeddings"],
      [mixtral({ torch_dtype: "float8_e4m3fn" }), 'config.json: torch_dtype "float8_e4m3fn" is not one of float32, float16, bfloat16'],
      [qwen({ norm_topk_prob: "yes" }), 'config.json: norm_topk_prob must be true or false, got "yes"'],
      [mixtral({ rms_norm_eps: 0 }), "config.json: rms_norm_eps must be a positive number, got 0"],
      [mixtral({ num_attention_heads: 2 ** 31 }), "config.json: num_attention_heads 2147483648 exceeds 2147483647"]
    ]
    for (const [json, message] of cases) expect(refusal(json)).toBe(message)
  })

  it("never throws on arbitrary JSON, at the top level or in any field of a valid config", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        expect(Either.isEither(decodeHfConfig(json))).toBe(true)
        expect(Either.isLeft(decodeHfConfig(json))).toBe(true)
      })
    )
    const keys = [...new Set([...Object.keys(tinyMixtralConfig), ...Object.keys(tinyQwen3MoeConfig), "head_dim", "dtype", "rope_parameters"])]
    fc.assert(
      fc.property(fc.boolean(), fc.dictionary(fc.constantFrom(...keys), fc.jsonValue(), { maxKeys: 4 }), (isMixtral, patch) => {
        const r = decodeHfConfig({ ...(isMixtral ? tinyMixtralConfig : tinyQwen3MoeConfig), ...patch })
        expect(Either.isEither(r)).toBe(true)
      }),
      { numRuns: 500 }
    )
  })
})
