/**
 * Tiny Mixtral and Qwen3-MoE models for tests: their config.json as Hugging Face writes it, the
 * spec it decodes to, and seeded random weights for every tensor of the checkpoint layout.
 */
import type { FamilySpec } from "../../domain/model/families/config.ts"
import { checkpointLayout } from "../../domain/model/families/layout.ts"
import { hashString, makePrng } from "../../domain/model/prng.ts"

export type FamilyTensor = { readonly shape: number[]; readonly data: Float32Array }

/**
 * Every tensor of the layout, uniform in ±1/sqrt(fan_in) for projections (so activations stay
 * O(1)), ±1 for the embedding, 1 ± 0.2 for norm weights. Each tensor draws from its own stream
 * (its checkpoint name), so changing the spec elsewhere leaves a tensor's values unchanged.
 */
export const familyWeights = (spec: FamilySpec, seed: number): Map<string, FamilyTensor> => {
  const out = new Map<string, FamilyTensor>()
  for (const part of checkpointLayout(spec)) {
    for (const t of part.tensors) {
      const rng = makePrng(seed, hashString(t.checkpointName))
      const shape = [...t.shape]
      const numel = shape.reduce((a, b) => a * b, 1)
      const data = new Float32Array(numel)
      const isNorm = shape.length === 1
      const bound = t.checkpointName === "model.embed_tokens.weight" ? 1 : 1 / Math.sqrt(shape[1] ?? 1)
      for (let i = 0; i < numel; i++) data[i] = isNorm ? rng.uniform(0.8, 1.2) : rng.uniform(-bound, bound)
      out.set(t.checkpointName, { shape, data })
    }
  }
  return out
}

export const tinyMixtral: FamilySpec = {
  family: "mixtral",
  vocab: 48,
  hidden: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 4,
  experts: 4,
  topK: 2,
  expertFF: 24,
  ropeTheta: 1e6,
  rmsEps: 1e-5,
  normTopK: true,
  tieEmbeddings: false,
  context: 64,
  dtype: "bf16"
}

/** headDim 8 ≠ hidden / heads, as real Qwen3-MoE checkpoints (2048 / 32 = 64, head_dim 128). */
export const tinyQwen3Moe: FamilySpec = {
  family: "qwen3_moe",
  vocab: 48,
  hidden: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  experts: 4,
  topK: 2,
  expertFF: 24,
  ropeTheta: 1e6,
  rmsEps: 1e-6,
  normTopK: true,
  tieEmbeddings: false,
  context: 64,
  dtype: "bf16"
}

/** Shaped as mistralai/Mixtral-8x7B-v0.1's config.json. */
export const tinyMixtralConfig = {
  architectures: ["MixtralForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 16,
  initializer_range: 0.02,
  intermediate_size: 24,
  max_position_embeddings: 64,
  model_type: "mixtral",
  num_attention_heads: 4,
  num_experts_per_tok: 2,
  num_hidden_layers: 2,
  num_key_value_heads: 2,
  num_local_experts: 4,
  output_router_logits: false,
  rms_norm_eps: 1e-5,
  rope_theta: 1000000.0,
  router_aux_loss_coef: 0.02,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.36.0.dev0",
  use_cache: true,
  vocab_size: 48
} as const

/** Shaped as Qwen/Qwen3-30B-A3B's config.json (intermediate_size is for dense layers, which it has none of). */
export const tinyQwen3MoeConfig = {
  architectures: ["Qwen3MoeForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  decoder_sparse_step: 1,
  eos_token_id: 151645,
  head_dim: 8,
  hidden_act: "silu",
  hidden_size: 16,
  initializer_range: 0.02,
  intermediate_size: 48,
  max_position_embeddings: 64,
  max_window_layers: 2,
  mlp_only_layers: [],
  model_type: "qwen3_moe",
  moe_intermediate_size: 24,
  norm_topk_prob: true,
  num_attention_heads: 4,
  num_experts: 4,
  num_experts_per_tok: 2,
  num_hidden_layers: 2,
  num_key_value_heads: 2,
  output_router_logits: false,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000.0,
  router_aux_loss_coef: 0.001,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.51.0",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 48
} as const
