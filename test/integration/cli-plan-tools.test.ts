import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { derivedPlanId } from "../../domain/pipeline/plan.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

const dir = tempDir()
const write = (name: string, value: unknown) => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value))
  return file
}
const layers = [3, 3, 9, 2, 5, 1, 8].map((cost) => ({ cost, memory: 1 }))
const equal = ["a", "b", "c"].map((id) => ({ id, speed: 1, memory: 10 }))

describe("blyan plan optimize, schedule and snapshot (no ledger needed)", () => {
  it("optimize prints the exact plan: bottleneck 14 where an equal share of compute gives 15", async () => {
    const r = await blyan(["plan", "optimize", "--input", write("c.json", { layers, devices: equal }), "--json"])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.bottleneck).toBe(14)
    expect([out.lowerBound, out.gap]).toEqual([14, 0])
    expect(out.stages.map((s: { start: number; end: number }) => [s.start, s.end]).flat()).toEqual([0, 0, 1, 3, 4, 6])
    const human = await blyan(["plan", "optimize", "--input", write("c.json", { layers, devices: equal })])
    expect(human.stdout).toMatch(/bottleneck 14 \(optimal\)\n\(equal-share baseline: 15\)/)
  })

  it("optimize refuses infeasible and malformed input with the reason and a non-zero exit", async () => {
    const tight = await blyan(["plan", "optimize", "--input", write("t.json", { layers, devices: [{ id: "a", speed: 1, memory: 3 }] })])
    expect(tight.code).toBe(1)
    expect(tight.stderr).toMatch(/no partition fits: the 7 layers need memory 7 in total but the 1 devices have 3/)
    const badJson = await blyan(["plan", "optimize", "--input", write("b.json", "{ layers: ")])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toMatch(/b\.json is not JSON/)
    const badShape = await blyan(["plan", "optimize", "--input", write("s.json", { layers, devices: [{ id: "a", speed: "fast", memory: 3 }] })])
    expect(badShape.code).toBe(2)
    expect(badShape.stderr).toMatch(/speed/)
    const badValue = await blyan(["plan", "optimize", "--input", write("v.json", { layers, devices: [{ id: "a", speed: -1, memory: 3 }] })])
    expect(badValue.code).toBe(1)
    expect(badValue.stderr).toMatch(/device a speed must be a finite number > 0, got -1/)
    const missing = await blyan(["plan", "optimize", "--input", path.join(dir, "nope.json")])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/cannot read .*nope\.json/)
  })

  it("schedule prints 1F1B per stage and refuses impossible counts", async () => {
    const r = await blyan(["plan", "schedule", "--stages", "2", "--microbatches", "3", "--json"])
    expect(r.code).toBe(0)
    const ops = (s: string) => s.split(" ").map((x) => ({ op: x[0], mb: Number(x.slice(1)) }))
    expect(JSON.parse(r.stdout)).toEqual({ stages: [ops("F0 F1 B0 F2 B1 B2"), ops("F0 B0 F1 B1 F2 B2")] })
    const bad = await blyan(["plan", "schedule", "--stages", "3", "--microbatches", "0"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/microbatches must be an integer ≥ 1, got 0/)
  })

  it("snapshot writes the plan the flags describe, with a content-derived id, and refuses bad stages", async () => {
    const out = path.join(dir, "p.json")
    const r = await blyan(["plan", "snapshot", "--epoch", "E1", "--round", "round_0", "--stages", "n1:0:11", "n2:12:23", "--zero1", "--out", out])
    expect(r.code).toBe(0)
    const plan = JSON.parse(fs.readFileSync(out, "utf8"))
    expect(plan).toMatchObject({ epoch: "E1", round: "round_0", zero1: true, actCkpt: false, stages: [{ node: "n1", start: 0, end: 11 }, { node: "n2", start: 12, end: 23 }] })
    expect(plan.planId).toMatch(/^plan-[0-9a-f]{12}$/)
    const named = JSON.parse((await blyan(["plan", "snapshot", "--epoch", "E1", "--round", "round_0", "--stages", "n1:0:23", "--plan-id", "mine"])).stdout)
    expect(named.planId).toBe("mine")
    const bad = await blyan(["plan", "snapshot", "--epoch", "E1", "--round", "round_0", "--stages", "n1:0", "n2:x:3", "--out", path.join(dir, "bad.json")])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/bad stage "n1:0": has 2 parts/)
    expect(bad.stderr).toMatch(/bad stage "n2:x:3": start "x" is not an integer/)
    expect(fs.existsSync(path.join(dir, "bad.json"))).toBe(false)
    const badEpoch = await blyan(["plan", "snapshot", "--epoch", "E 1", "--round", "r", "--stages", "n1:0:3"])
    expect(badEpoch.code).toBe(2)
    expect(badEpoch.stderr).toMatch(/--epoch "E 1"/)
  })

  it("optimize plans 200,000 devices, and refuses more device kinds than it can search, up front", async () => {
    const many = Array.from({ length: 200_000 }, (_, i) => ({ id: `g${i}`, speed: 2, memory: 10 }))
    const r = await blyan(["plan", "optimize", "--input", write("many.json", { layers, devices: many }), "--json"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    // [3,3] [9] [2,5] [1,8] at speed 2: the largest layer alone sets the bottleneck, boundaries as early as possible
    const best = JSON.parse(r.stdout)
    expect(best.bottleneck).toBe(4.5)
    expect(best.stages.map((s: { device: string; end: number }) => `${s.device}:${s.end}`)).toEqual(["g0:1", "g1:2", "g2:4", "g3:6"])
    const kinds = Array.from({ length: 100 }, (_, i) => ({ id: `k${i}`, speed: 1 + i, memory: 10 }))
    const wide = await blyan(["plan", "optimize", "--input", write("kinds.json", { layers: Array.from({ length: 100 }, () => ({ cost: 1, memory: 1 })), devices: kinds })])
    expect(wide.code).toBe(1)
    expect(wide.stderr).toMatch(/partition input too large: 100 device kinds \(distinct speed and memory\), at most 32/)
  })

  it("schedule refuses a schedule too large to hold, up front, with exit 2", async () => {
    const r = await blyan(["plan", "schedule", "--stages", "100000", "--microbatches", "100000"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/invalid schedule: 100000 stages × 100000 microbatches × 2 = 20000000000 ops, more than the 2000000 a schedule may have/)
    expect(r.stdout).toBe("")
  })

  it("snapshot derives the id from the content and refuses an id a terminal would interpret or one that claims other content", async () => {
    const args = ["plan", "snapshot", "--epoch", "E1", "--round", "round_0", "--stages", "n1:0:11", "n2:12:23"]
    const derived = JSON.parse((await blyan(args)).stdout)
    expect(derived.planId).toBe(derivedPlanId(derived))
    const out = path.join(dir, "escaped.json")
    const escaped = await blyan([...args, "--plan-id", "p\n\u001b[31m", "--out", out])
    expect(escaped.code).toBe(2)
    expect(escaped.stderr).toMatch(/--plan id "p\\n\\u001b\[31m" must start with a letter or digit/)
    expect(escaped.stderr).not.toMatch(/\u001b/)
    expect(fs.existsSync(out)).toBe(false)
    const other = derivedPlanId({ ...derived, zero1: true })
    const forged = await blyan([...args, "--plan-id", other])
    expect(forged.code).toBe(2)
    expect(forged.stderr).toMatch(new RegExp(`plan id ${other} has the content-derived form but this content derives ${derived.planId}`))
  })
})
