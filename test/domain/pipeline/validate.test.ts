import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { hashCanonical } from "../../../domain/ledger/hash.ts"
import { derivedPlanId, type Plan, type PlanStage } from "../../../domain/pipeline/plan.ts"
import { parseStage, parseStages, planFailures, validatePlan, type DeviceRegistry, type PlanFailure } from "../../../domain/pipeline/validate.ts"

const registry: DeviceRegistry = new Map([
  ["n1", { speed: 1, memory: 100 }],
  ["n2", { speed: 2, memory: 100 }],
  ["n3", { speed: 1, memory: 5 }]
])
const layerMemory = Array.from({ length: 24 }, () => 4) // 24 layers, 4 each
const ctx = { registry, layerMemory }
const plan = (...stages: PlanStage[]): Plan => ({ planId: "p1", epoch: "E1", round: "round_0", stages, zero1: false, actCkpt: false })
const st = (node: string, start: number, end: number): PlanStage => ({ node, start, end })
const failures = (p: Plan) => planFailures(p, ctx)
const strip = (fs: ReadonlyArray<PlanFailure>) => fs.map(({ message: _m, ...rest }) => rest)

describe("plan validation", () => {
  it("accepts a plan that covers every layer once, in order, on distinct known devices that fit", () => {
    const good = plan(st("n1", 0, 11), st("n2", 12, 23))
    expect(validatePlan(good, ctx)).toEqual(Either.right(good))
  })

  it("names a gap, including missing leading layers", () => {
    expect(strip(failures(plan(st("n1", 0, 11), st("n2", 13, 23))))).toEqual([{ _tag: "Gap", after: 11, before: 13 }])
    expect(failures(plan(st("n1", 0, 11), st("n2", 13, 23)))[0]!.message).toBe("layer 12 is in no stage: gap after layer 11")
    expect(strip(failures(plan(st("n1", 2, 11), st("n2", 12, 23))))).toEqual([{ _tag: "Gap", after: -1, before: 2 }])
  })

  it("names an overlap and stages out of order", () => {
    expect(strip(failures(plan(st("n1", 0, 12), st("n2", 12, 23))))).toEqual([{ _tag: "Overlap", stage: 1, from: 12, to: 12 }])
    expect(strip(failures(plan(st("n2", 12, 23), st("n1", 0, 11))))).toEqual([
      { _tag: "Gap", after: -1, before: 12 },
      { _tag: "OutOfOrder", stage: 1, start: 0, previousStart: 12 }
    ])
  })

  it("names negative, reversed and non-integer indices", () => {
    expect(failures(plan(st("n1", -1, 11), st("n2", 12, 23))).map((f) => f._tag)).toContain("NegativeIndex")
    expect(failures(plan(st("n1", 0, 11), st("n2", 23, 12))).map((f) => f._tag)).toContain("ReversedRange")
    expect(failures(plan(st("n1", 0, 11.5), st("n2", 12, 23))).map((f) => f._tag)).toContain("NonIntegerIndex")
    expect(failures(plan(st("n1", -1, 11), st("n2", 12, 23)))[0]!.message).toMatch(/stage 0 on n1: .*must not be negative/)
  })

  it("names a layer count mismatch, short or long", () => {
    expect(strip(failures(plan(st("n1", 0, 11), st("n2", 12, 22))))).toEqual([{ _tag: "LayerCountMismatch", layers: 24, covered: 23 }])
    expect(strip(failures(plan(st("n1", 0, 11), st("n2", 12, 30))))).toEqual([{ _tag: "LayerCountMismatch", layers: 24, covered: 31 }])
    expect(failures(plan(st("n1", 0, 11), st("n2", 12, 22)))[0]!.message).toMatch(/model has 24 layers/)
  })

  it("names duplicate and unknown devices", () => {
    expect(strip(failures(plan(st("n1", 0, 11), st("n1", 12, 23))))).toEqual([{ _tag: "DuplicateDevice", node: "n1", stages: [0, 1] }])
    expect(strip(failures(plan(st("n1", 0, 11), st("n9", 12, 23))))).toEqual([{ _tag: "UnknownDevice", node: "n9", stage: 1 }])
    expect(failures(plan(st("n1", 0, 11), st("n9", 12, 23)))[0]!.message).toBe("stage 1: node \"n9\" is not registered")
  })

  it("names a stage that does not fit its device's memory", () => {
    expect(strip(failures(plan(st("n1", 0, 11), st("n3", 12, 23))))).toEqual([{ _tag: "OutOfMemory", stage: 1, node: "n3", needs: 48, has: 5 }])
  })

  it("names an empty plan id or round and an epoch that cannot name a stream", () => {
    const named = { ...plan(st("n1", 0, 11), st("n2", 12, 23)), planId: "", epoch: "E 1/x", round: "" }
    expect(failures(named).map((f) => [f._tag, (f as { field?: string }).field])).toEqual([["BadName", "planId"], ["BadName", "epoch"], ["BadName", "round"]])
  })

  it("names a plan without stages", () => {
    expect(failures(plan()).map((f) => f._tag)).toEqual(["NoStages"])
  })

  it("returns every failure at once, each with a message", () => {
    const bad = plan(st("n3", 1, 11), st("n3", 11, 22), st("n9", 24, 30))
    const r = validatePlan(bad, ctx)
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.failures.map((f) => f._tag).sort()).toEqual(
        ["DuplicateDevice", "Gap", "Gap", "LayerCountMismatch", "OutOfMemory", "OutOfMemory", "Overlap", "UnknownDevice"].sort()
      )
      for (const f of r.left.failures) expect(f.message.length).toBeGreaterThan(10)
      expect(r.left.message).toMatch(/^plan p1 is invalid: /)
    }
  })

  it("accepts exactly the contiguous covers (property): random cut points are valid, any perturbation is not", () => {
    const nodes = ["n1", "n2"]
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 23 }), fc.integer({ min: -2, max: 2 }), (cut, shift) => {
        const p = plan(st(nodes[0]!, 0, cut - 1), st(nodes[1]!, cut + shift, 23))
        expect(failures(p).length === 0).toBe(shift === 0 && cut + shift <= 23)
      })
    )
  })
})

describe("stage syntax", () => {
  it("parses node:start:end", () => {
    expect(parseStage("n1:0:11")).toEqual(Either.right({ node: "n1", start: 0, end: 11 }))
    expect(parseStage("gpu-a:007:12")).toEqual(Either.right({ node: "gpu-a", start: 7, end: 12 }))
  })

  it("names what is wrong with a malformed stage", () => {
    const kind = (s: string) => Either.getLeft(parseStage(s)).pipe((e) => (e._tag === "Some" ? e.value.kind : "parsed"))
    const cases: Array<[string, string]> = [
      ["n1:0", "MissingParts"],
      ["n1", "MissingParts"],
      ["", "MissingParts"],
      ["n1:0:1:2", "TooManyParts"],
      [":0:1", "EmptyNode"],
      ["n1:a:1", "NotAnInteger"],
      ["n1:0:1.5", "NotAnInteger"],
      ["n1::1", "NotAnInteger"],
      ["n1:1e2:300", "NotAnInteger"],
      ["n1: 1:2", "NotAnInteger"],
      ["n1:0:99999999999999999999", "NotAnInteger"],
      ["n1:-1:11", "Negative"],
      ["n1:0:-3", "Negative"]
    ]
    for (const [input, want] of cases) expect(kind(input), input).toBe(want)
    expect(Either.getLeft(parseStage("n1:-1:11")).pipe((e) => (e._tag === "Some" ? e.value.message : ""))).toBe(
      'bad stage "n1:-1:11": start -1 is negative (expected node:start:end, e.g. n1:0:11)'
    )
  })

  it("parses a list, reporting every bad entry", () => {
    expect(parseStages(["n1:0:11", "n2:12:23"])).toEqual(Either.right([st("n1", 0, 11), st("n2", 12, 23)]))
    const r = parseStages(["n1:x:1", "n2:12:23", "n3"])
    expect(Either.isLeft(r) && r.left.map((e) => e.kind)).toEqual(["NotAnInteger", "MissingParts"])
  })
})

describe("plan ids", () => {
  const good = plan(st("n1", 0, 11), st("n2", 12, 23))
  const withId = (planId: string, p: Plan = good): Plan => ({ ...p, planId })
  const idFailures = (p: Plan) => failures(p).filter((f) => f._tag === "BadName" || f._tag === "DerivedIdMismatch")

  it("accept a letter or digit, then up to 127 of A-Z a-z 0-9 . _ : -", () => {
    for (const id of ["p1", "7", "E1:round_0.v2-b", "plan-custom", "plan-ABCDEF012345", `a${"b".repeat(127)}`])
      expect(failures(withId(id)), id).toEqual([])
  })

  it("refuse anything else, terminal escapes included, and never echo them raw", () => {
    for (const id of ["", "-x", ".x", "a b", "a/b", `a${"b".repeat(128)}`, "é", "x\u202e", "x\u009b31m", "x\u007f", "p1\n", "\n\u001b[31m"]) {
      const found = idFailures(withId(id))
      expect(found.map((f) => [f._tag, (f as { field?: string }).field]), JSON.stringify(id)).toEqual([["BadName", "planId"]])
      expect(found[0]!.message, JSON.stringify(id)).toMatch(/^[\x20-\x7e]*$/)
    }
    const r = validatePlan(withId("\n\u001b[31m"), ctx)
    expect(Either.isLeft(r) && r.left.planId).toBe(`"\\n\\u001b[31m"`)
    expect(Either.isLeft(r) && r.left.message).toMatch(/^plan "\\n\\u001b\[31m" is invalid: plan id "\\n\\u001b\[31m" must start with a letter or digit/)
  })

  it("derive from content as `plan-` and 12 hex digits of sha256 over the JCS body, whatever the key order or extra keys", () => {
    const body = { epoch: good.epoch, round: good.round, stages: good.stages, zero1: good.zero1, actCkpt: good.actCkpt }
    expect(derivedPlanId(body)).toBe(`plan-${hashCanonical(body).slice(0, 12)}`)
    const shuffled = { actCkpt: false, zero1: false, stages: [{ end: 11, node: "n1", start: 0, extra: 1 }, { end: 23, start: 12, node: "n2" }], round: "round_0", epoch: "E1" }
    expect(derivedPlanId(shuffled)).toBe(derivedPlanId(body))
    expect(derivedPlanId({ ...body, zero1: true })).not.toBe(derivedPlanId(body))
  })

  it("of the derived form must be the content's hash: a tampered plan cannot keep the genuine plan's id", () => {
    const genuine = withId(derivedPlanId(good))
    expect(validatePlan(genuine, ctx)).toEqual(Either.right(genuine))
    const tampered = { ...genuine, stages: [st("n2", 0, 11), st("n1", 12, 23)] }
    expect(strip(idFailures(tampered))).toEqual([{ _tag: "DerivedIdMismatch", planId: genuine.planId, derived: derivedPlanId(tampered) }])
    expect(idFailures(tampered)[0]!.message).toMatch(/has the content-derived form but this content derives plan-[0-9a-f]{12}/)
    // the same tampered content under a custom id is just another plan
    expect(failures({ ...tampered, planId: "mine" })).toEqual([])
  })
})

describe("plans of very many stages", () => {
  const n = 200_000
  const many = { registry: new Map(Array.from({ length: n }, (_, i) => [`n${i}`, { speed: 1, memory: 1 }] as const)), layerMemory: Array.from({ length: n }, () => 1) }

  it(`validates ${n} stages, and names ${n} stages on one node in linear time`, () => {
    const planOf = (stages: PlanStage[]): Plan => ({ ...plan(), stages })
    const valid = planOf(Array.from({ length: n }, (_, i) => st(`n${i}`, i, i)))
    expect(planFailures(valid, many)).toEqual([])
    const t0 = Date.now()
    const crowded = planFailures(planOf(Array.from({ length: n }, (_, i) => st("n0", i, i))), many)
    expect(crowded.map((f) => f._tag)).toEqual(["DuplicateDevice"])
    expect((crowded[0] as { stages: ReadonlyArray<number> }).stages.length).toBe(n)
    expect(Date.now() - t0).toBeLessThan(5_000)
  })
})
