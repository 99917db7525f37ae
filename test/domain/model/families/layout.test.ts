import { describe, expect, it } from "vitest"
import type { FamilySpec } from "../../../../domain/model/families/config.ts"
import { checkpointLayout, partOfCheckpointName, tensorsOfPart } from "../../../../domain/model/families/layout.ts"
import { attentionPart, EMBEDDING, expertPart, HEAD, routerPart } from "../../../../domain/model/spec.ts"
import { tinyMixtral, tinyQwen3Moe } from "../../../support/family-weights.ts"

const all = (spec: FamilySpec) => checkpointLayout(spec).flatMap((p) => p.tensors.map((t) => ({ part: p.part, ...t })))
const shapeOf = (spec: FamilySpec, name: string) => all(spec).find((t) => t.checkpointName === name)?.shape

describe("the checkpoint layout of a Hugging Face MoE", () => {
  it("counts its tensors per family, with and without tied embeddings", () => {
    // embedding 1 + per layer (attention 5 or 7, router 2, experts 3 each) + head 2 (1 when tied)
    const count = (attention: number, tied: boolean) => 1 + 2 * (attention + 2 + 4 * 3) + (tied ? 1 : 2)
    expect(all(tinyMixtral)).toHaveLength(count(5, false))
    expect(all({ ...tinyMixtral, tieEmbeddings: true })).toHaveLength(count(5, true))
    expect(all(tinyQwen3Moe)).toHaveLength(count(7, false))
    expect(all({ ...tinyQwen3Moe, tieEmbeddings: true })).toHaveLength(count(7, true))
    expect(all({ ...tinyQwen3Moe, tieEmbeddings: true }).some((t) => t.checkpointName === "lm_head.weight")).toBe(false)
  })

  it("lists the parts in the ledger's order with unique names", () => {
    for (const spec of [tinyMixtral, tinyQwen3Moe]) {
      const layout = checkpointLayout(spec)
      const perLayer = (l: number) => [attentionPart(l), routerPart(l), ...Array.from({ length: spec.experts }, (_, e) => expertPart(l, e))]
      expect(layout.map((p) => p.part)).toEqual([EMBEDDING, ...Array.from({ length: spec.layers }, (_, l) => perLayer(l)).flat(), HEAD])
      const names = all(spec).map((t) => t.checkpointName)
      expect(new Set(names).size).toBe(names.length)
      for (const p of layout) expect(new Set(p.tensors.map((t) => t.name)).size).toBe(p.tensors.length)
    }
  })

  it("gives PyTorch shapes ([out, in] for Linear weights)", () => {
    const m = tinyMixtral
    expect(shapeOf(m, "model.embed_tokens.weight")).toEqual([48, 16])
    expect(shapeOf(m, "model.layers.1.input_layernorm.weight")).toEqual([16])
    expect(shapeOf(m, "model.layers.1.self_attn.q_proj.weight")).toEqual([16, 16])
    expect(shapeOf(m, "model.layers.1.self_attn.k_proj.weight")).toEqual([8, 16])
    expect(shapeOf(m, "model.layers.1.self_attn.v_proj.weight")).toEqual([8, 16])
    expect(shapeOf(m, "model.layers.1.self_attn.o_proj.weight")).toEqual([16, 16])
    expect(shapeOf(m, "model.layers.0.post_attention_layernorm.weight")).toEqual([16])
    expect(shapeOf(m, "model.layers.0.block_sparse_moe.gate.weight")).toEqual([4, 16])
    expect(shapeOf(m, "model.layers.0.block_sparse_moe.experts.3.w1.weight")).toEqual([24, 16])
    expect(shapeOf(m, "model.layers.0.block_sparse_moe.experts.3.w3.weight")).toEqual([24, 16])
    expect(shapeOf(m, "model.layers.0.block_sparse_moe.experts.3.w2.weight")).toEqual([16, 24])
    expect(shapeOf(m, "model.norm.weight")).toEqual([16])
    expect(shapeOf(m, "lm_head.weight")).toEqual([48, 16])

    const q = tinyQwen3Moe // headDim 8: q is [4·8, 16], k and v [2·8, 16]
    expect(shapeOf(q, "model.layers.0.self_attn.q_proj.weight")).toEqual([32, 16])
    expect(shapeOf(q, "model.layers.0.self_attn.k_proj.weight")).toEqual([16, 16])
    expect(shapeOf(q, "model.layers.0.self_attn.v_proj.weight")).toEqual([16, 16])
    expect(shapeOf(q, "model.layers.0.self_attn.o_proj.weight")).toEqual([16, 32])
    expect(shapeOf(q, "model.layers.0.self_attn.q_norm.weight")).toEqual([8])
    expect(shapeOf(q, "model.layers.0.self_attn.k_norm.weight")).toEqual([8])
    expect(shapeOf(q, "model.layers.1.mlp.gate.weight")).toEqual([4, 16])
    expect(shapeOf(q, "model.layers.1.mlp.experts.0.gate_proj.weight")).toEqual([24, 16])
    expect(shapeOf(q, "model.layers.1.mlp.experts.0.up_proj.weight")).toEqual([24, 16])
    expect(shapeOf(q, "model.layers.1.mlp.experts.0.down_proj.weight")).toEqual([16, 24])
  })

  it("names a tensor inside its part by the checkpoint name without the layer or model. prefix", () => {
    expect(tensorsOfPart(tinyMixtral, "layer1.expert2")?.map((t) => t.name)).toEqual([
      "block_sparse_moe.experts.2.w1.weight",
      "block_sparse_moe.experts.2.w3.weight",
      "block_sparse_moe.experts.2.w2.weight"
    ])
    expect(tensorsOfPart(tinyQwen3Moe, "head")?.map((t) => t.name)).toEqual(["norm.weight", "lm_head.weight"])
    expect(tensorsOfPart(tinyQwen3Moe, "embedding")?.map((t) => t.name)).toEqual(["embed_tokens.weight"])
    for (const spec of [tinyMixtral, tinyQwen3Moe]) {
      for (const t of all(spec)) {
        const rebuilt = t.part.startsWith("layer") ? `model.layers.${/^layer(\d+)/.exec(t.part)![1]}.${t.name}` : t.name === "lm_head.weight" ? t.name : `model.${t.name}`
        expect(rebuilt).toBe(t.checkpointName)
      }
    }
  })

  it("finds the part of every checkpoint name, and none for names outside the layout", () => {
    for (const spec of [tinyMixtral, tinyQwen3Moe, { ...tinyQwen3Moe, tieEmbeddings: true }]) {
      for (const t of all(spec)) {
        const hit = partOfCheckpointName(spec, t.checkpointName)
        expect(hit?.part).toBe(t.part)
        expect(hit?.tensor).toEqual({ name: t.name, checkpointName: t.checkpointName, shape: t.shape })
      }
    }
    const outside = [
      "model.layers.2.input_layernorm.weight", // layer beyond the spec
      "model.layers.0.block_sparse_moe.experts.4.w1.weight", // expert beyond the spec
      "model.layers.0.mlp.experts.0.w1.weight", // Qwen3 module with Mixtral names
      "model.layers.0.self_attn.q_norm.weight", // Mixtral has no q_norm
      "model.layers.00.input_layernorm.weight",
      "model.layers.0.self_attn.q_proj.bias",
      "model.embed_tokens.bias",
      "lm_head.bias",
      ""
    ]
    for (const name of outside) expect(partOfCheckpointName(tinyMixtral, name)).toBeUndefined()
    expect(partOfCheckpointName({ ...tinyMixtral, tieEmbeddings: true }, "lm_head.weight")).toBeUndefined()
    expect(partOfCheckpointName(tinyQwen3Moe, "model.layers.0.block_sparse_moe.gate.weight")).toBeUndefined()
  })
})
