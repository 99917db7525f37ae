import { Effect } from "effect"
import { describe, expect, it, layer } from "@effect/vitest"
import onnxPkg from "onnx-proto"
import { buildModelGraphs, forwardGraphs, graphFiles } from "../../../../domain/model/onnx/graphs.ts"
import { gelu, layerNorm, MASKED } from "../../../../domain/model/onnx/layers.ts"
import { hashString, makePrng } from "../../../../domain/model/prng.ts"
import { attentionPart, EMBEDDING, expertPart, HEAD, routerPart } from "../../../../domain/model/spec.ts"
import type { TensorValue } from "../../../../domain/ports/executor.ts"
import { f64, gradCheck, i64, randomWeights, TestExecutor64, tinySpec } from "../support.ts"
import { GraphBuilder } from "../../../../domain/model/onnx/ir.ts"

const spec = tinySpec
const d = spec.dModel
const g = forwardGraphs(spec, "double")
const weights = randomWeights(spec, 11)

const rand = (name: string, n: number, scale = 1) => {
  const rng = makePrng(5, hashString(name))
  return Float64Array.from({ length: n }, () => rng.uniform(-scale, scale))
}
const partFeeds = (part: string): Record<string, TensorValue> =>
  Object.fromEntries(Object.entries(weights.parts.get(part)!.tensors).map(([n, t]) => [n, f64(t.data, t.shape)]))
const causal = (t: number) => Float64Array.from({ length: t * t }, (_, k) => (k % t > Math.floor(k / t) ? MASKED : 0))

layer(TestExecutor64)("whole-part gradients match central differences (f64)", (it) => {
  it.effect("an expert FFN (x, W1, b1, W2, b2)", () =>
    Effect.gen(function* () {
      const r = yield* gradCheck(g.expert, ["x", "w1", "b1", "w2", "b2"], { x: f64(rand("x", 5 * d), [5, d]), ...partFeeds(expertPart(0, 1)) })
      expect(r.checked.length).toBe(5 * 12)
      expect(r.maxError).toBeLessThanOrEqual(1)
    })
  )

  it.effect("a causal attention block with pre-LN and residual (x, LN, Wq, Wk, Wv, Wo)", () =>
    Effect.gen(function* () {
      const B = 2
      const T = 5
      const r = yield* gradCheck(
        g.attention,
        ["x", "ln.weight", "ln.bias", "wq", "wk", "wv", "wo"],
        { x: f64(rand("ax", B * T * d), [B, T, d]), mask: f64(causal(T), [T, T]), ...partFeeds(attentionPart(1)) },
        { samples: 10 }
      )
      expect(r.maxError).toBeLessThanOrEqual(1)
    })
  )

  it.effect("the router with gates renormalised over the selected experts (h, LN, W)", () =>
    Effect.gen(function* () {
      const N = 4
      const mask = Float64Array.from({ length: N * spec.experts }, (_, k) => ((k % spec.experts) + Math.floor(k / spec.experts)) % 2)
      const r = yield* gradCheck(g.routerGates, ["h", "ln.weight", "ln.bias", "w"], {
        h: f64(rand("h", N * d), [N, d]),
        mask: f64(mask, [N, spec.experts]),
        ...partFeeds(routerPart(0))
      })
      expect(r.maxError).toBeLessThanOrEqual(1)
    })
  )

  it.effect("the embedding (token and position tables)", () =>
    Effect.gen(function* () {
      const r = yield* gradCheck(g.embedding, ["tok", "pos"], { tokens: i64([3, 3, 200, 7, 0, 3], [2, 3]), positions: i64([0, 1, 2], [3]), ...partFeeds(EMBEDDING) }, { samples: 40 })
      expect(r.maxError).toBeLessThanOrEqual(1)
    })
  )

  it.effect("the head with cross-entropy loss (h, LN, W)", () =>
    Effect.gen(function* () {
      const B = 2
      const T = 3
      const onehot = new Float64Array(B * T * 256)
      ;[65, 66, 10, 255, 0, 66].forEach((t, i) => (onehot[i * 256 + t] = 1))
      const r = yield* gradCheck(
        g.headLoss,
        ["h", "ln.weight", "ln.bias", "w"],
        { h: f64(rand("hh", B * T * d), [B, T, d]), onehot: f64(onehot, [B, T, 256]), weights: f64(new Float64Array(B * T).fill(1 / (B * T)), [B, T]), ...partFeeds(HEAD) },
        { samples: 16 }
      )
      expect(r.maxError).toBeLessThanOrEqual(1)
    })
  )

  it.effect("GELU and LayerNorm as decomposed in the graphs", () =>
    Effect.gen(function* () {
      const b = new GraphBuilder("ln-gelu", "double")
      const x = b.input("x", [3, 6])
      const gamma = b.input("gamma", [6])
      const beta = b.input("beta", [6])
      const graph = b.build([b.identity(gelu(b, layerNorm(b, x, gamma, beta)), "y")])
      const r = yield* gradCheck(graph, ["x", "gamma", "beta"], { x: f64(rand("lx", 18, 2), [3, 6]), gamma: f64(rand("lg", 6), [6]), beta: f64(rand("lb", 6), [6]) })
      expect(r.maxError).toBeLessThanOrEqual(1)
    })
  )
})

describe("graph bytes", () => {
  it("the same spec and precision give byte-identical graphs; another spec gives other graphs", () => {
    const a = buildModelGraphs(spec)
    const b = buildModelGraphs({ ...spec })
    const c = buildModelGraphs({ ...spec, dFF: 48 })
    for (const k of ["embedding", "attention", "router", "expert"] as const) {
      expect(Buffer.from(a[k].forward.bytes).equals(Buffer.from(b[k].forward.bytes))).toBe(true)
      expect(Buffer.from(a[k].backward.bytes).equals(Buffer.from(b[k].backward.bytes))).toBe(true)
    }
    expect(Buffer.from(a.expert.forward.bytes).equals(Buffer.from(c.expert.forward.bytes))).toBe(false)
  })

  it("backward graphs take grad.<output> and return grad.<input>", () => {
    const gr = buildModelGraphs(spec)
    expect(gr.expert.backward.inputs).toEqual(["x", "w1", "b1", "w2", "b2", "grad.y"])
    expect(gr.expert.backward.outputs).toEqual(["grad.x", "grad.w1", "grad.b1", "grad.w2", "grad.b2"])
    expect(gr.router.backward.inputs).toEqual(["h", "ln.weight", "ln.bias", "w", "mask", "grad.xn", "grad.gates"])
    expect(gr.head.backward.outputs).toEqual(["loss", "grad.h", "grad.ln.weight", "grad.ln.bias", "grad.w"])
  })

  it("exports every graph as a valid ONNX model file (opset 17, weights as inputs, no weights inside)", () => {
    const { onnx } = onnxPkg
    const files = graphFiles(buildModelGraphs(spec))
    expect(files.map((f) => f.file)).toEqual([
      "embedding.forward.onnx",
      "embedding.backward.onnx",
      "attention.forward.onnx",
      "attention.backward.onnx",
      "attention.step.onnx",
      "router.forward.onnx",
      "router.backward.onnx",
      "expert.forward.onnx",
      "expert.backward.onnx",
      "head.forward.onnx",
      "head.loss.onnx",
      "head.backward.onnx"
    ])
    for (const { graph } of files) {
      const m = onnx.ModelProto.decode(graph.bytes)
      expect(Number(m.opsetImport[0]!.version)).toBe(17)
      const gp = m.graph!
      expect(gp.input!.map((i) => i.name)).toEqual(graph.inputs)
      expect(gp.output!.map((o) => o.name)).toEqual(graph.outputs)
      // Initializers are only small constants (axes, shapes, scalars): weights always come in as inputs.
      for (const t of gp.initializer!) expect(t.rawData!.length).toBeLessThanOrEqual(64)
    }
  })
})
