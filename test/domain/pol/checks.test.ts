import { describe, expect, it } from "vitest"
import { initWeights } from "../../../domain/model/init.ts"
import type { Part } from "../../../domain/model/tensor.ts"
import { candidateProblem, relativeDistance } from "../../../domain/pol/checks.ts"
import { tinySpec } from "../model/support.ts"

const base = initWeights({ ...tinySpec, seed: 11 }).parts.get("layer0.expert1")!
const map = (p: Part, f: (v: number, i: number, tensor: string) => number): Part => ({
  name: p.name,
  tensors: Object.fromEntries(Object.entries(p.tensors).map(([n, t]) => [n, { ...t, data: t.data.map((v, i) => f(v, i, n)) }]))
})
const moved = map(base, (v, i) => v + 0.01 * Math.sin(i + 1))
const earlier = [{ block: "genesis", part: base }]

describe("checks before evaluation, each a named rejection", () => {
  it("accepts a candidate that moved a little from its base", () => {
    expect(relativeDistance(moved, base)).toBeGreaterThan(1e-3)
    expect(candidateProblem(tinySpec, base, moved, earlier)).toBeUndefined()
  })

  it("refuses a wrong layout or dtype, NaN or Infinity, a copy of any earlier block, and an update out of bounds", () => {
    const cases: ReadonlyArray<readonly [Part, string, RegExp]> = [
      [{ ...moved, name: "layer0.expert2" }, "shape", /not layer0.expert1/],
      [{ name: base.name, tensors: Object.fromEntries(Object.entries(moved.tensors).slice(1)) }, "shape", /missing tensor/],
      [{ name: base.name, tensors: Object.fromEntries(Object.entries(moved.tensors).map(([n, t]) => [n, { ...t, dtype: "f16" as const }])) }, "dtype", /is f16, not f32/],
      [map(moved, (v, i) => (i === 3 ? NaN : v)), "non-finite", /NaN or Infinity/],
      [map(moved, (v, i) => (i === 0 ? Infinity : v)), "non-finite", /NaN or Infinity/],
      [base, "copy", /a copy of block genesis/],
      [map(base, (v, i) => v + 1e-6 * Math.cos(i)), "copy", /a copy of block genesis/],
      [map(base, (v) => v * 10 + 1), "update-norm", /more than 3/]
    ]
    for (const [candidate, reason, detail] of cases) expect(candidateProblem(tinySpec, base, candidate, earlier)).toMatchObject({ reason, detail: expect.stringMatching(detail) })
    // The earlier block wins: a candidate is compared with every block the part had.
    expect(candidateProblem(tinySpec, moved, moved, [...earlier, { block: "second", part: moved }])).toMatchObject({ reason: "copy", detail: expect.stringContaining("block second") })
  })
})
