import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { segmentPath } from "../../adapters/eventstore/file-layout.ts"
import { derivedPlanId } from "../../domain/pipeline/plan.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

const data = tempDir()
const dir = tempDir()
const log = () => fs.readFileSync(segmentPath(data))
const write = (name: string, value: unknown) => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, JSON.stringify(value))
  return file
}
// Devices only: the layers come from the ledger's model (4 layers of the default spec).
const cluster = write("cluster.json", {
  devices: [
    { id: "n1", speed: 1, memory: 1e9 },
    { id: "n2", speed: 2, memory: 1e9 },
    { id: "small", speed: 1, memory: 1000 }
  ]
})
const plan = (planId: string, stages: ReadonlyArray<[string, number, number]>, round = "round_0") =>
  write(`${planId}.json`, { planId, epoch: "E1", round, stages: stages.map(([node, start, end]) => ({ node, start, end })), zero1: false, actCkpt: false })

describe("blyan plan validate, promote, show and list (on the file ledger)", () => {
  it("refuses every kind of bad plan with its reason and a non-zero exit, recording nothing", async () => {
    expect((await blyan(["init", "--data", data])).code).toBe(0)
    const before = log()
    const cases: Array<[string, ReadonlyArray<[string, number, number]>, RegExp]> = [
      ["gap", [["n1", 0, 1], ["n2", 3, 3]], /Gap: layer 2 is in no stage/],
      ["overlap", [["n1", 0, 2], ["n2", 2, 3]], /Overlap: stage 1 and stage 0 both hold layer 2/],
      ["short", [["n1", 0, 1], ["n2", 2, 2]], /LayerCountMismatch: the plan covers layers 0..2 but the model has 4 layers/],
      ["negative", [["n1", -1, 1], ["n2", 2, 3]], /NegativeIndex: stage 0 on n1/],
      ["reversed", [["n1", 1, 0], ["n2", 2, 3]], /ReversedRange: stage 0 on n1: start 1 is after end 0/],
      ["duplicate", [["n1", 0, 1], ["n1", 2, 3]], /DuplicateDevice: node n1 holds stages 0, 1/],
      ["unknown", [["n1", 0, 1], ["n7", 2, 3]], /UnknownDevice: stage 1: node "n7" is not registered/],
      ["oom", [["n1", 0, 1], ["small", 2, 3]], /OutOfMemory: stage 1 on small needs memory \d+, the device has 1000/]
    ]
    for (const [id, stages, reason] of cases) {
      const file = plan(id, stages)
      const v = await blyan(["plan", "validate", "--file", file, "--cluster", cluster, "--data", data])
      expect(v.code, id).toBe(1)
      expect(v.stderr, id).toMatch(reason)
    }
    // promote runs the same validation: one multi-failure plan shows that it refuses and records nothing
    const p = await blyan(["plan", "promote", "--file", plan("many", [["n1", 0, 1], ["n1", 3, 9]]), "--cluster", cluster, "--data", data, "--json"])
    expect(p.code).toBe(1)
    expect(p.stderr).toMatch(/invalid, nothing recorded/)
    expect(JSON.parse(p.stdout).failures.map((f: { _tag: string }) => f._tag)).toEqual(["Gap", "LayerCountMismatch", "DuplicateDevice"])
    const noFile = await blyan(["plan", "promote", "--file", path.join(dir, "absent.json"), "--cluster", cluster, "--data", data])
    expect(noFile.code).toBe(2)
    const wrongShape = await blyan(["plan", "promote", "--file", write("shape.json", { planId: "x", stages: "n1:0:3" }), "--cluster", cluster, "--data", data])
    expect(wrongShape.code).toBe(2)
    expect(wrongShape.stderr).toMatch(/epoch/)
    const noDevices = await blyan(["plan", "validate", "--file", plan("fine", [["n1", 0, 3]]), "--data", data])
    expect(noDevices.code).toBe(1)
    expect(noDevices.stderr).toMatch(/no devices/)
    expect(log().equals(before)).toBe(true)
  })

  it("promotes a valid plan once per round; show and list read it back; audit passes", async () => {
    const good = plan("good", [["n1", 0, 1], ["n2", 2, 3]])
    const v = await blyan(["plan", "validate", "--file", good, "--cluster", cluster, "--data", data, "--json"])
    const valid = JSON.parse(v.stdout)
    expect(valid).toMatchObject({ planId: "good", valid: true, failures: [] })
    // equal layers: two on n1 (speed 1) take twice as long as two on n2 (speed 2)
    expect(valid.stageTimes[0]).toBeCloseTo(2 * valid.stageTimes[1], 6)
    expect(valid.bottleneck).toBe(valid.stageTimes[0])
    const p = await blyan(["plan", "promote", "--file", good, "--cluster", cluster, "--data", data, "--json"])
    expect(p.code).toBe(0)
    expect(JSON.parse(p.stdout)).toMatchObject({ planId: "good", status: "frozen", recorded: true })
    const after = log()
    const rival = await blyan(["plan", "promote", "--file", plan("rival", [["n2", 0, 3]]), "--cluster", cluster, "--data", data])
    expect(rival.code).toBe(1)
    expect(rival.stderr).toMatch(/round round_0 of epoch E1 already runs under plan good; nothing recorded/)
    const again = await blyan(["plan", "promote", "--file", good, "--cluster", cluster, "--data", data, "--json"])
    expect(JSON.parse(again.stdout).recorded).toBe(false)
    expect(log().equals(after)).toBe(true)

    const shown = JSON.parse((await blyan(["plan", "show", "good", "--data", data, "--json"])).stdout)
    expect(shown).toMatchObject({ planId: "good", epoch: "E1", round: "round_0", status: "frozen", stages: [{ node: "n1", start: 0, end: 1 }, { node: "n2", start: 2, end: 3 }] })
    const events = JSON.parse((await blyan(["events", "--data", data, "--json", "--from", String(shown.plannedSeq)])).stdout)
    expect(events.map((e: { stream: string; type: string }) => `${e.stream} ${e.type}`)).toEqual(["epoch-E1 EpochPlanned", "epoch-E1 PlanPromoted", "chain-A PlanFrozen"])
    const listed = JSON.parse((await blyan(["plan", "list", "--data", data, "--json"])).stdout)
    expect(listed.map((e: { planId: string }) => e.planId)).toEqual(["good"])
    const missing = await blyan(["plan", "show", "nope", "--data", data])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no plan nope/)
    expect((await blyan(["audit", "--data", data])).code).toBe(0)
  })

  it("memory says which stages must checkpoint activations to train the ledger's model under 1F1B", async () => {
    // 2 layers of blyan-moe-tiny hold 18.9 MB of weights, gradients and AdamW state; 2 microbatches
    // of 64 tokens in flight add 1.8 MB, checkpointed 0.6 MB: 20 MB fits only with checkpointing.
    const tight = write("tight.json", { devices: [{ id: "n1", speed: 1, memory: 20e6 }, { id: "n2", speed: 2, memory: 1e9 }] })
    const r = await blyan(["plan", "memory", "--file", path.join(dir, "good.json"), "--cluster", tight, "--microbatches", "8", "--data", data, "--json"])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ tokens: 64, zero1: false, actCkpt: true })
    expect(out.stages.map((s: { inFlight: number; actCkpt: boolean }) => [s.inFlight, s.actCkpt])).toEqual([[2, true], [1, false]])
  })

  it("refuses an id a terminal would interpret, and a tampered plan under the genuine plan's derived id, recording nothing; the genuine plan then promotes", async () => {
    const before = log()
    const escaped = write("escaped.json", { planId: "p1\n\u001b[31m", epoch: "E2", round: "round_0", stages: [{ node: "n1", start: 0, end: 3 }] })
    for (const command of ["validate", "promote"]) {
      const r = await blyan(["plan", command, "--file", escaped, "--cluster", cluster, "--data", data])
      expect(r.code, command).toBe(1)
      expect(r.stderr, command).toMatch(/plan "p1\\n\\u001b\[31m" is invalid/)
      expect(r.stderr, command).toMatch(/BadName: plan id "p1\\n\\u001b\[31m" must start with a letter or digit/)
      expect(r.stderr, command).not.toMatch(/\u001b/)
    }
    const body = { epoch: "E2", round: "round_0", stages: [{ node: "n1", start: 0, end: 1 }, { node: "n2", start: 2, end: 3 }], zero1: false, actCkpt: false }
    const genuine = { planId: derivedPlanId(body), ...body }
    const tampered = write("tampered.json", { ...genuine, stages: [{ node: "n2", start: 0, end: 3 }] })
    for (const command of ["validate", "promote"]) {
      const r = await blyan(["plan", command, "--file", tampered, "--cluster", cluster, "--data", data])
      expect(r.code, command).toBe(1)
      expect(r.stderr, command).toMatch(new RegExp(`DerivedIdMismatch: plan id ${genuine.planId} has the content-derived form but this content derives plan-[0-9a-f]{12}`))
    }
    expect(log().equals(before)).toBe(true)
    const p = await blyan(["plan", "promote", "--file", write("genuine.json", genuine), "--cluster", cluster, "--data", data, "--json"])
    expect(p.code).toBe(0)
    expect(JSON.parse(p.stdout)).toMatchObject({ planId: genuine.planId, status: "frozen", recorded: true })
  })

  it("validates a plan of 200,000 stages and reports its bottleneck", async () => {
    const n = 200_000
    const big = write("big-cluster.json", {
      layers: Array.from({ length: n }, (_, i) => ({ cost: 1 + (i % 5), memory: 1 })),
      devices: Array.from({ length: n }, (_, i) => ({ id: `d${i}`, speed: 1, memory: 1 }))
    })
    const file = write("big.json", { planId: "big", epoch: "E3", round: "round_0", stages: Array.from({ length: n }, (_, i) => ({ node: `d${i}`, start: i, end: i })) })
    const r = await blyan(["plan", "validate", "--file", file, "--cluster", big, "--data", data, "--json"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ planId: "big", valid: true, bottleneck: 5 })
    expect(out.stageTimes.length).toBe(n)
  })
})
