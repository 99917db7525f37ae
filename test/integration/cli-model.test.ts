import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { segmentPath } from "../../adapters/eventstore/file-layout.ts"
import { decodePart } from "../../domain/model/safetensors.ts"
import { defaultSpec, expertPart } from "../../domain/model/spec.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"
import { testNatsUrl } from "../support/jetstream-fixtures.ts"

const corpus = path.resolve(import.meta.dirname, "../../docs/corpus")
type Block = { seq: number; data: { name: string; hash: string; dependsOn: string[]; payload: string } }
/** Chain B's blocks (it also holds each training run's ModelTrained, appended with its blocks). */
const blocksOf = async (data: string): Promise<Block[]> =>
  (JSON.parse((await blyan(["events", "--data", data, "--stream", "chain-B", "--json"])).stdout) as Array<Block & { type: string }>).filter((e) => e.type === "BlockAppended")

describe("blyan CLI: the model", () => {
  const data = tempDir()
  const home = tempDir()
  const env = { BLYAN_HOME: home }

  it("init publishes genesis weights; chat attributes every byte to current expert blocks, deterministically", async () => {
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const a = await blyan(["chat", "Rain on the river", "--max-tokens", "6", "--seed", "7", "--data", data, "--json"])
    expect(a.code).toBe(0)
    const b = await blyan(["chat", "Rain on the river", "--max-tokens", "6", "--seed", "7", "--data", data, "--json"])
    expect(b.stdout).toBe(a.stdout)
    const answer = JSON.parse(a.stdout)
    expect(answer.tokens).toHaveLength(6)
    expect(Buffer.from(answer.text).equals(Buffer.from(new TextDecoder().decode(Uint8Array.from(answer.tokens))))).toBe(true)
    const byName = new Map((await blocksOf(data)).map((x) => [x.data.name, x.data.hash]))
    expect(answer.experts).toHaveLength(6 * defaultSpec.layers * defaultSpec.topK)
    for (const e of answer.experts) expect(e.block).toBe(byName.get(expertPart(e.layer, e.expert)))
    for (let t = 0; t < 6; t++)
      for (let l = 0; l < defaultSpec.layers; l++) {
        const gates = answer.experts.filter((e: { token: number; layer: number }) => e.token === t && e.layer === l)
        expect(gates.reduce((s: number, e: { weight: number }) => s + e.weight, 0)).toBeCloseTo(1, 5)
      }
  })

  it("train lowers held-out loss on the shipped corpus, appends blocks depending on their parents, and audit passes", async () => {
    const before = await blocksOf(data)
    const r = await blyan(["train", "--corpus", path.join(corpus, "train.txt"), "--held-out", path.join(corpus, "heldout.txt"), "--steps", "40", "--batch", "8", "--data", data, "--json"], env)
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.heldOutLossAfter).toBeLessThan(report.heldOutLossBefore)
    expect(report.appended).toHaveLength(before.length)
    const parents = new Map(before.map((x) => [x.data.name, x.data.hash]))
    const after = (await blocksOf(data)).slice(before.length)
    for (const blk of after) expect(blk.data.dependsOn).toEqual([parents.get(blk.data.name)])
    const audit = await blyan(["audit", "--data", data, "--json"], env)
    expect(audit.code, audit.stderr).toBe(0)
    // Chat now answers with the trained blocks.
    const answer = JSON.parse((await blyan(["chat", "The sea", "--max-tokens", "2", "--data", data, "--json"])).stdout)
    const trained = new Set(after.map((x) => x.data.hash))
    for (const e of answer.experts) expect(trained.has(e.block)).toBe(true)
  })

  it("train --pipeline: every step through stages in 1F1B order, tensors over the real nats-server; held-out loss goes down, the blocks are recorded as local training's are, and audit passes", async () => {
    const before = await blocksOf(data)
    const args = ["train", "--pipeline", "--stages", "4", "--microbatches", "2", "--nats", testNatsUrl, "--corpus", path.join(corpus, "train.txt"), "--held-out", path.join(corpus, "heldout.txt")]
    const r = await blyan([...args, "--steps", "10", "--batch", "8", "--data", data, "--json"], env)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/pipeline: layers 0\.\.0 \| layers 1\.\.1 \| layers 2\.\.2 \| layers 3\.\.3; 2 microbatches per step, 1F1B/)
    const report = JSON.parse(r.stdout)
    expect(report.heldOutLossAfter).toBeLessThan(report.heldOutLossBefore)
    const parents = new Map(before.map((x) => [x.data.name, x.data.hash]))
    const after = (await blocksOf(data)).slice(before.length)
    expect(after).toHaveLength(report.appended.length)
    for (const blk of after) expect(blk.data.dependsOn).toEqual([parents.get(blk.data.name)])
    expect((await blyan(["audit", "--data", data, "--json"], env)).code).toBe(0)
  })

  it("train --pipeline --plan: the stages of a frozen plan, the run recorded as its epoch's round, and audit passes; a plan not on the ledger is refused", async () => {
    const dir = tempDir()
    const cluster = path.join(dir, "cluster.json")
    fs.writeFileSync(cluster, JSON.stringify({ devices: [{ id: "n1", speed: 1, memory: 1e9 }, { id: "n2", speed: 1, memory: 1e9 }] }))
    const planFile = path.join(dir, "plan.json")
    fs.writeFileSync(planFile, JSON.stringify({ planId: "pipe-1", epoch: "E7", round: "round_0", stages: [{ node: "n1", start: 0, end: 2 }, { node: "n2", start: 3, end: 3 }] }))
    const train = (...more: string[]) => blyan(["train", "--pipeline", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data, "--json", ...more], env)
    expect((await train("--plan", "pipe-1")).stderr).toMatch(/--plan pipe-1: no such plan on the ledger/)
    expect((await blyan(["plan", "promote", "--file", planFile, "--cluster", cluster, "--data", data], env)).code).toBe(0)
    const r = await train("--plan", "pipe-1")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/pipeline: layers 0\.\.2 \| layers 3\.\.3 \(plan pipe-1, epoch E7 round round_0\)/)
    const epoch = JSON.parse((await blyan(["events", "--data", data, "--stream", "epoch-E7", "--json"])).stdout) as Array<{ type: string; data: unknown }>
    expect(epoch.map((e) => e.type)).toEqual(["EpochPlanned", "PlanPromoted", "RoundStarted"])
    expect(epoch[2]!.data).toEqual({ epoch: "E7", round: "round_0", planId: "pipe-1" })
    expect((await blyan(["audit", "--data", data, "--json"], env)).code).toBe(0)
  })

  it("export writes a part's current payload as safetensors and the graphs as ONNX", async () => {
    const out = path.join(tempDir(), "e.safetensors")
    const r = await blyan(["export", "--expert", "layer0.expert1", "--out", out, "--data", data, "--json"])
    expect(r.code, r.stderr).toBe(0)
    const part = Either.getOrThrow(decodePart(new Uint8Array(fs.readFileSync(out))))
    expect(part.name).toBe("layer0.expert1")
    expect(Object.keys(part.tensors).sort()).toEqual(["b1", "b2", "w1", "w2"])
    const current = (await blocksOf(data)).filter((x) => x.data.name === "layer0.expert1").at(-1)!
    expect(JSON.parse(r.stdout).block).toBe(current.data.hash)
    const dir = tempDir()
    const g = await blyan(["export", "--onnx", dir, "--data", data, "--json"])
    expect(g.code, g.stderr).toBe(0)
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".onnx")).length).toBeGreaterThanOrEqual(10)
  })

  it("refuses bad arguments and settings with a message naming them, changing nothing", async () => {
    const seg = segmentPath(data)
    const before = fs.readFileSync(seg)
    const cases: Array<[string[], RegExp, Record<string, string>?]> = [
      [["chat", "hi", "--max-tokens", "0", "--data", data], /--max-tokens/],
      [["chat", "hi", "--temperature", "-1", "--data", data], /--temperature/],
      [["train", "--corpus", "/nonexistent/x.txt", "--steps", "3", "--data", data], /cannot read/],
      [["train", "--corpus", path.join(corpus, "train.txt"), "--steps", "0", "--data", data], /--steps/],
      [["export", "--expert", "layer0.nothing", "--out", "/tmp/x", "--data", data], /--expert/],
      [["train", "--pipeline", "--stages", "9", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /--stages must be within 1\.\.4/],
      [["train", "--pipeline", "--microbatches", "3", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /--microbatches must divide --batch 8/],
      [["train", "--nats", "nats://127.0.0.1:4222", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /needs --pipeline/],
      [["train", "--plan", "pipe-1", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /--plan names the stages of a pipeline: it needs --pipeline/],
      [["train", "--pipeline", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /BLYAN_PIPELINE_COMPRESSION/, { BLYAN_PIPELINE_COMPRESSION: "zstd" }],
      [["train", "--pipeline", "--epoch", "E1", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /--epoch .* needs --pipeline and --nats/],
      [["train", "--pipeline", "--epoch", "bad epoch!", "--nats", "nats://127.0.0.1:4222", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /--epoch: epoch "bad epoch!" must be/],
      [["train", "--pipeline", "--epoch", "E1", "--rounds", "0", "--nats", "nats://127.0.0.1:4222", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /--rounds must be within 1\.\.10000/],
      [["train", "--pipeline", "--epoch", "E1", "--rounds", "2", "--nats", "nats://127.0.0.1:4222", "--corpus", path.join(corpus, "train.txt"), "--steps", "3", "--data", data], /BLYAN_PIPELINE_ROUND_INTERVAL/, { BLYAN_PIPELINE_ROUND_INTERVAL: "-1" }],
      [["chat", "hi", "--data", data], /BLYAN_DEVICE/, { BLYAN_DEVICE: "gpu" }]
    ]
    for (const [args, message, extra] of cases) {
      const r = await blyan(args, { ...env, ...extra })
      expect(r.code, args.join(" ")).not.toBe(0)
      expect(r.stderr).toMatch(message)
    }
    expect(fs.readFileSync(seg).equals(before)).toBe(true)
  })
})
