import { Effect } from "effect"
import { describe, expect, layer } from "@effect/vitest"
import { DIFFERENTIABLE_OPS, differentiate, gradientOf } from "../../../../domain/model/onnx/autodiff.ts"
import { GraphBuilder } from "../../../../domain/model/onnx/ir.ts"
import type { ExecutionFailed, Executor } from "../../../../domain/ports/executor.ts"
import { hashString, makePrng } from "../../../../domain/model/prng.ts"
import { f64, gradCheck, i64, TestExecutor64 } from "../support.ts"

type Gen = "any" | "positive" | "awayFromZero"
interface InputSpec {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  readonly gen?: Gen
}

const values = (name: string, n: number, gen: Gen = "any") => {
  const rng = makePrng(3, hashString(name))
  return Float64Array.from({ length: n }, () => {
    const u = rng.uniform(-1, 1)
    if (gen === "positive") return 0.5 + Math.abs(u)
    if (gen === "awayFromZero") return Math.sign(u || 1) * (0.2 + Math.abs(u))
    return u
  })
}

/** Builds a one-op (or few-op) graph on double inputs and checks its VJP against central differences. */
const check = (name: string, inputs: ReadonlyArray<InputSpec>, body: (b: GraphBuilder, xs: string[]) => string) =>
  Effect.gen(function* () {
    const b = new GraphBuilder(name, "double")
    const xs = inputs.map((i) => b.input(i.name, i.shape))
    const g = b.build([b.identity(body(b, xs), "y")])
    const feeds = Object.fromEntries(inputs.map((i) => [i.name, f64(values(`${name}.${i.name}`, i.shape.reduce((a, c) => a * c, 1), i.gen), i.shape)]))
    const r = yield* gradCheck(g, inputs.map((i) => i.name), feeds)
    expect(r.checked.length).toBeGreaterThan(0)
    expect(r.maxError, JSON.stringify(r.checked.slice(0, 4))).toBeLessThanOrEqual(1)
    return r
  })

const A = (shape: number[], gen?: Gen): InputSpec => ({ name: "a", shape, ...(gen ? { gen } : {}) })
const B = (shape: number[], gen?: Gen): InputSpec => ({ name: "b", shape, ...(gen ? { gen } : {}) })

// One f64 executor for the whole file.
layer(TestExecutor64)((it) => {
  describe("autodiff: every op's gradient matches central differences (f64 on onnxruntime)", () => {
    const covered = new Set<string>()
    const op = (name: string, fn: () => Effect.Effect<unknown, ExecutionFailed, Executor>) =>
      it.effect(name, () =>
        Effect.suspend(() => {
          covered.add(name.split(" ")[0]!)
          return fn()
        })
      )

    op("Add same shape", () => check("add", [A([2, 3]), B([2, 3])], (b, [x, y]) => b.add(x!, y!)))
    op("Add broadcast over rows and a size-1 axis", () => check("add-bc", [A([2, 1, 3]), B([4, 1])], (b, [x, y]) => b.add(x!, y!)))
    op("Sub broadcast", () => check("sub", [A([2, 3]), B([3])], (b, [x, y]) => b.sub(x!, y!)))
    op("Mul broadcast", () => check("mul", [A([2, 3]), B([2, 1])], (b, [x, y]) => b.mul(x!, y!)))
    op("Div broadcast", () => check("div", [A([2, 3]), B([3], "positive")], (b, [x, y]) => b.div(x!, y!)))
    op("Neg", () => check("neg", [A([5])], (b, [x]) => b.neg(x!)))
    op("Exp", () => check("exp", [A([2, 3])], (b, [x]) => b.exp(x!)))
    op("Log", () => check("log", [A([2, 3], "positive")], (b, [x]) => b.log(x!)))
    op("Tanh", () => check("tanh", [A([2, 3])], (b, [x]) => b.tanh(x!)))
    op("Sqrt", () => check("sqrt", [A([2, 3], "positive")], (b, [x]) => b.sqrt(x!)))
    op("Relu", () => check("relu", [A([3, 4], "awayFromZero")], (b, [x]) => b.relu(x!)))
    op("Identity", () => check("identity", [A([3])], (b, [x]) => b.identity(x!)))
    op("MatMul 2-D", () => check("mm", [A([3, 4]), B([4, 5])], (b, [x, y]) => b.matmul(x!, y!)))
    op("MatMul batched", () => check("mm-batched", [A([2, 2, 3, 4]), B([2, 2, 4, 3])], (b, [x, y]) => b.matmul(x!, y!)))
    op("MatMul activations × weight", () => check("mm-weight", [A([2, 3, 4]), B([4, 5])], (b, [x, y]) => b.matmul(x!, y!)))
    op("MatMul broadcast batch", () => check("mm-bc", [A([2, 3, 4]), B([1, 4, 2])], (b, [x, y]) => b.matmul(x!, y!)))
    op("Transpose", () => check("transpose", [A([2, 3, 4])], (b, [x]) => b.transpose(x!, [2, 0, 1])))
    op("Reshape with 0 and -1", () => check("reshape", [A([2, 3, 4])], (b, [x]) => b.reshape(b.reshape(x!, [0, -1]), [6, 2, 2])))
    op("Softmax last axis", () => check("softmax", [A([3, 5])], (b, [x]) => b.softmax(x!, -1)))
    op("Softmax first axis", () => check("softmax0", [A([3, 5])], (b, [x]) => b.softmax(x!, 0)))
    op("ReduceSum dropping axes", () => check("rsum", [A([2, 3, 4])], (b, [x]) => b.reduceSum(x!, [1], false)))
    op("ReduceSum keeping axes", () => check("rsum-keep", [A([2, 3, 4])], (b, [x]) => b.reduceSum(x!, [0, 2], true)))
    op("ReduceMean keeping axes", () => check("rmean", [A([2, 3, 4])], (b, [x]) => b.reduceMean(x!, [-1], true)))
    op("ReduceMean dropping axes", () => check("rmean0", [A([2, 3, 4])], (b, [x]) => b.reduceMean(x!, [0], false)))
    op("Gather with repeated indices (scatter-add)", () =>
      Effect.gen(function* () {
        const b = new GraphBuilder("gather", "double")
        const table = b.input("table", [5, 3])
        const idx = b.input("idx", [2, 3], "int64")
        const g = b.build([b.identity(b.gather(table, idx), "y")])
        const r = yield* gradCheck(g, ["table"], { table: f64(values("gather", 15), [5, 3]), idx: i64([4, 1, 4, 0, 4, 1], [2, 3]) }, { samples: 15 })
        expect(r.maxError).toBeLessThanOrEqual(1)
        // Row 4 is gathered three times, row 2 never: its gradient is exactly zero.
        expect(r.checked.filter((c) => c.index >= 6 && c.index < 9).every((c) => c.analytic === 0)).toBe(true)
      })
    )

    it("covers every op the autodiff differentiates", () => {
      expect(DIFFERENTIABLE_OPS).toEqual(
        ["Add", "Div", "Exp", "Gather", "Identity", "Log", "MatMul", "Mul", "Neg", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Softmax", "Sqrt", "Sub", "Tanh", "Transpose"].sort()
      )
      for (const o of DIFFERENTIABLE_OPS) expect(covered.has(o), o).toBe(true)
    })
  })

  describe("autodiff: graph-level behaviour", () => {
    it.effect("accumulates the gradient of a value used more than once (x·x + x)", () => check("reuse", [A([4])], (b, [x]) => b.add(b.mul(x!, x!), x!)))

    it.effect("a stop-gradient node is a constant: d/dx log Σ exp(x − stop(max x)) is softmax(x)", () =>
      check("lse", [A([2, 5])], (b, [x]) => {
        const z = b.sub(x!, b.reduceMaxNoGrad(x!, [-1], true))
        return b.add(b.log(b.reduceSum(b.exp(z), [-1], true)), b.reduceMaxNoGrad(x!, [-1], true))
      })
    )

    it.effect("gives zeros for an input the output does not depend on", () =>
      Effect.gen(function* () {
        const b = new GraphBuilder("unused", "double")
        const x = b.input("x", [3])
        b.input("u", [2])
        const g = b.build([b.identity(b.mul(x, x), "y")])
        const r = yield* gradCheck(g, ["x", "u"], { x: f64([1, 2, 3], [3]), u: f64([5, 6], [2]) })
        expect(r.maxError).toBeLessThanOrEqual(1)
        expect(r.checked.filter((c) => c.input === "u").map((c) => c.analytic)).toEqual([0, 0])
      })
    )

    it.effect("handles symbolic dimensions: one backward graph serves any batch size", () =>
      Effect.gen(function* () {
        const b = new GraphBuilder("symbolic", "double")
        const x = b.input("x", ["N", 3])
        const w = b.input("w", [3, 2])
        const bias = b.input("bias", [2])
        const g = b.build([b.identity(b.tanh(b.add(b.matmul(x, w), bias)), "y")])
        for (const n of [1, 4]) {
          const r = yield* gradCheck(g, ["x", "w", "bias"], { x: f64(values(`x${n}`, n * 3), [n, 3]), w: f64(values("w", 6), [3, 2]), bias: f64(values("b", 2), [2]) })
          expect(r.maxError).toBeLessThanOrEqual(1)
        }
      })
    )

    it("refuses ops without a gradient rule, non-scalar loss seeds and unknown inputs, naming them", () => {
      const b = new GraphBuilder("bad", "double")
      const x = b.input("x", [2, 3])
      const m = b.node("ReduceMax", [x], { type: "double", shape: [2, 1] }, { axes: { ints: [1] }, keepdims: { i: 1 } })
      const g = b.build([b.identity(m, "y")])
      expect(() => differentiate(g, { wrt: ["x"], seeds: [{ output: "y", seed: "input" }] })).toThrow(/no gradient rule for ReduceMax/)
      expect(() => gradientOf(g, "y", ["x"])).toThrow(/scalar/)
      expect(() => gradientOf(g, "y", ["nope"])).toThrow(/nope is not an input/)
    })
  })
})
