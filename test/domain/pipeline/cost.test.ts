import { describe, expect, it } from "vitest"
import {
  activationBytesPerToken,
  backwardFlopsPerToken,
  blyanMoeLayerCosts,
  boundaryBytesPerToken,
  forwardFlopsPerToken,
  layerParams,
  moeActiveParams,
  moeLayerParams,
  trainingFlopsPerToken,
  transformerLayerLoad
} from "../../../domain/pipeline/cost.ts"
import { defaultSpec } from "../../../domain/model/spec.ts"

describe("cost model", () => {
  it("counts a dense layer: 4h² + 2hf parameters, 2× forward FLOPs, backward twice forward", () => {
    const layer = { hidden: 4096, ffn: 16384 }
    expect(layerParams(layer)).toBe(4 * 4096 ** 2 + 2 * 4096 * 16384)
    expect(forwardFlopsPerToken(layerParams(layer))).toBe(2 * 201_326_592)
    expect(backwardFlopsPerToken(1000)).toBe(2 * forwardFlopsPerToken(1000))
    expect(trainingFlopsPerToken(1000)).toBe(6000)
    expect(activationBytesPerToken(layer)).toBe(4 * (6 * 4096 + 2 * 16384))
    expect(activationBytesPerToken(layer, 2)).toBe(2 * (6 * 4096 + 2 * 16384))
    expect(boundaryBytesPerToken(4096, 2)).toBe(8192)
    expect(transformerLayerLoad(layer, 512)).toEqual({ cost: 6 * 201_326_592 * 512, memory: 4 * 201_326_592 })
  })

  it("counts blyan-moe layers: every expert's memory, only the top-k experts' compute", () => {
    const d = defaultSpec.dModel
    const per = 4 * d * d + d * defaultSpec.experts + defaultSpec.experts * 2 * d * defaultSpec.dFF
    expect(moeLayerParams(defaultSpec)).toBe(per)
    expect(moeActiveParams(defaultSpec)).toBe(per - (defaultSpec.experts - defaultSpec.topK) * 2 * d * defaultSpec.dFF)
    const loads = blyanMoeLayerCosts(defaultSpec, { tokens: 64 })
    expect(loads).toHaveLength(defaultSpec.layers)
    expect(loads[0]).toEqual({ cost: 6 * moeActiveParams(defaultSpec) * 64, memory: 4 * per })
    // training state: f32 weights + f32 gradients + two fp32 AdamW moments
    expect(blyanMoeLayerCosts(defaultSpec, { counting: { gradients: true, optimizer: true } })[0]!.memory).toBe(16 * per)
    expect(blyanMoeLayerCosts({ ...defaultSpec, dtype: "bf16" }, { counting: { gradients: true } })[0]!.memory).toBe(4 * per)
  })
})
