import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { importCheckpoint, mapCheckpointName } from "../../../domain/model/checkpoint.ts"
import { roundToDtype } from "../../../domain/model/half.ts"
import { decodePart, encodePart, encodeSafetensors } from "../../../domain/model/safetensors.ts"
import type { StTensor } from "../../../domain/model/safetensors.ts"

describe("checkpoint tensor names → blocks", () => {
  it("maps Mixtral and Qwen-MoE expert and router names", () => {
    expect(mapCheckpointName("model.layers.0.block_sparse_moe.experts.7.w1.weight")).toEqual({ block: "layer0.expert7", tensor: "w1.weight" })
    expect(mapCheckpointName("model.layers.31.block_sparse_moe.experts.0.w3.weight")).toEqual({ block: "layer31.expert0", tensor: "w3.weight" })
    expect(mapCheckpointName("model.layers.12.mlp.experts.59.gate_proj.weight")).toEqual({ block: "layer12.expert59", tensor: "gate_proj.weight" })
    expect(mapCheckpointName("model.layers.12.mlp.experts.3.down_proj.weight")).toEqual({ block: "layer12.expert3", tensor: "down_proj.weight" })
    expect(mapCheckpointName("model.layers.4.block_sparse_moe.gate.weight")).toEqual({ block: "layer4.router", tensor: "gate.weight" })
    expect(mapCheckpointName("model.layers.4.mlp.gate.weight")).toEqual({ block: "layer4.router", tensor: "gate.weight" })
  })

  it("maps nothing else (attention, norms, embeddings, shared experts, malformed indices)", () => {
    for (const n of [
      "model.embed_tokens.weight",
      "lm_head.weight",
      "model.norm.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.mlp.shared_expert.gate_proj.weight",
      "model.layers.0.mlp.shared_expert_gate.weight",
      "model.layers.01.mlp.experts.1.up_proj.weight",
      "model.layers.x.mlp.experts.1.up_proj.weight",
      "model.layers.1.mlp.experts.1"
    ]) {
      expect(mapCheckpointName(n), n).toBeUndefined()
    }
  })
})

describe("importing a checkpoint", () => {
  const t = (dtype: StTensor["dtype"], shape: number[], seed: number): StTensor => {
    const n = shape.reduce((a, b) => a * b, 1)
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 31 + i) / 3)
    return { dtype, shape, data: roundToDtype(data, dtype === "F32" ? "f32" : dtype === "F16" ? "f16" : "bf16") }
  }
  // Two shards, as real checkpoints are split: a small Mixtral-style model (2 layers, 2 experts, d 4, ff 6).
  const shard1 = encodeSafetensors({
    "model.embed_tokens.weight": t("BF16", [10, 4], 1),
    "model.layers.0.self_attn.q_proj.weight": t("BF16", [4, 4], 2),
    "model.layers.0.block_sparse_moe.gate.weight": t("BF16", [2, 4], 3),
    "model.layers.0.block_sparse_moe.experts.0.w1.weight": t("BF16", [6, 4], 4),
    "model.layers.0.block_sparse_moe.experts.0.w2.weight": t("BF16", [4, 6], 5),
    "model.layers.0.block_sparse_moe.experts.0.w3.weight": t("BF16", [6, 4], 6),
    "model.layers.0.block_sparse_moe.experts.1.w1.weight": t("BF16", [6, 4], 7)
  })
  const shard2 = encodeSafetensors({
    "model.layers.0.block_sparse_moe.experts.1.w2.weight": t("BF16", [4, 6], 8),
    "model.layers.0.block_sparse_moe.experts.1.w3.weight": t("BF16", [6, 4], 9),
    "model.layers.1.mlp.experts.0.gate_proj.weight": t("F16", [6, 4], 10),
    "model.layers.1.mlp.gate.weight": t("F32", [2, 4], 11),
    "lm_head.weight": t("F32", [10, 4], 12)
  })

  it("groups expert and router tensors of all shards into blocks, keeping dtypes and values", () => {
    const r = Either.getOrThrow(importCheckpoint([shard1, shard2]))
    expect(r.parts.map((p) => p.name)).toEqual(["layer0.expert0", "layer0.expert1", "layer0.router", "layer1.expert0", "layer1.router"])
    expect(r.skipped).toEqual(["lm_head.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"])
    const e1 = r.parts[1]!
    expect(Object.keys(e1.tensors).sort()).toEqual(["w1.weight", "w2.weight", "w3.weight"])
    expect(e1.tensors["w2.weight"]!.dtype).toBe("bf16")
    expect(e1.tensors["w2.weight"]!.shape).toEqual([4, 6])
    expect(Array.from(e1.tensors["w2.weight"]!.data)).toEqual(Array.from(t("BF16", [4, 6], 8).data))
    expect(r.parts[3]!.tensors["gate_proj.weight"]!.dtype).toBe("f16")
    // Each block becomes a payload; it decodes back to the same part.
    for (const p of r.parts) expect(Either.getOrThrow(decodePart(encodePart(p)))).toEqual(p)
  })

  it("refuses a truncated shard", () => {
    const bad = shard2.slice(0, shard2.length - 1)
    const r = importCheckpoint([shard1, bad])
    expect(Either.isLeft(r) && r.left.kind).toBe("OffsetOutOfRange")
  })
})
