import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { requestPlan } from "../../../domain/network/replica-choice.ts"

/** Each expert's replicas, best first: distinct node names from a small pool, possibly none. */
const orders = fc.array(fc.uniqueArray(fc.constantFrom("a", "b", "c", "d", "e"), { maxLength: 5 }), { maxLength: 12 })

describe("a layer's requests", () => {
  it("asks for every expert exactly once, of a node that serves it, or alone of its queue group when none does", () =>
    fc.assert(
      fc.property(orders, (os) => {
        const plan = requestPlan(os)
        expect(plan.flatMap((r) => r.jobs).sort((x, y) => x - y)).toEqual(os.map((_, i) => i))
        for (const r of plan) {
          if (r.node === undefined) {
            expect(r.jobs).toHaveLength(1)
            expect(os[r.jobs[0]!]).toEqual([])
          } else for (const j of r.jobs) expect(os[j]).toContain(r.node)
        }
        // One request per node at most.
        const nodes = plan.flatMap((r) => (r.node === undefined ? [] : [r.node]))
        expect(new Set(nodes).size).toBe(nodes.length)
      })
    ))

  it("asks a node that serves them all in one request, and among such nodes the best placed", () =>
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom("a", "b", "c", "d"), { minLength: 1 }), fc.integer({ min: 1, max: 8 }), (nodes, experts) => {
        // Every expert's replicas in the same order: the first is the best placed for all.
        const plan = requestPlan(Array.from({ length: experts }, () => nodes))
        expect(plan).toEqual([{ node: nodes[0], jobs: Array.from({ length: experts }, (_, i) => i) }])
      })
    ))

  it("covers experts on different nodes with a request to each; equal nodes are told apart by rank, then name", () => {
    expect(requestPlan([["a"], ["b"], ["a", "b"]]).map((r) => r.node)).toEqual(["a", "b"])
    expect(requestPlan([["b", "a"], ["a", "b"], ["c"]])).toEqual([
      { node: "a", jobs: [0, 1] },
      { node: "c", jobs: [2] }
    ])
  })
})
