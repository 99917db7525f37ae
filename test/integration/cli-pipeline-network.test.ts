import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { ownNatsServer } from "../support/nats-server.ts"
import { blyanProcesses, eventually, pipelineNetworkSettings, stopped } from "../support/processes.ts"

const corpus = path.resolve("docs/corpus")
const { scope, root, env, start } = blyanProcesses("pipeline-network", pipelineNetworkSettings)

describe("pipeline training on node processes over a real nats-server", () => {
  it("train --pipeline --plan runs each stage on its plan's node process; kill -9 of a stage's node mid-round: the step is retried, the stage given to a live spare node (StageReassigned), training completes, loss goes down, audit passes; up's /metrics counts the reported steps and failures", async () => {
    const server = await Effect.runPromise(ownNatsServer().pipe(Scope.extend(scope)))
    // The network: a ledger held by `up`, where three node processes register and serve.
    const network = path.join(root, "network")
    expect((await blyan(["init", "--data", network], env)).code).toBe(0)
    const apiKey = (JSON.parse((await blyan(["keys", "create", "--role", "node", "--json", "--data", network], env)).stdout) as { key: string }).key
    const up = start(["up", "--data", network, "--nats", server.url, "--port", "0"])
    await eventually(() => up.out.text.includes("running"), "blyan up")
    const ids = ["pa", "pb", "pc"]
    const nodes = ids.map((id) => start(["node", "--nats", server.url, "--api-key", apiKey, "--node-id", id, "--data", path.join(root, id)]))
    for (const [i, n] of nodes.entries()) await eventually(() => n.out.text.includes(`node ${ids[i]}: serving`), `node ${ids[i]} serving`)

    // The trainer's ledger, with a frozen plan: layers 0..1 on pa, 2..3 on pb.
    const data = path.join(root, "trainer")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const cluster = path.join(root, "cluster.json")
    fs.writeFileSync(cluster, JSON.stringify({ devices: ids.map((id) => ({ id, speed: 1, memory: 1e9 })) }))
    const planFile = path.join(root, "plan.json")
    fs.writeFileSync(planFile, JSON.stringify({ planId: "pipe-net", epoch: "E9", round: "round_0", stages: [{ node: "pa", start: 0, end: 1 }, { node: "pb", start: 2, end: 3 }] }))
    expect((await blyan(["plan", "promote", "--file", planFile, "--cluster", cluster, "--data", data], env)).code).toBe(0)

    const steps = 80
    const args = ["train", "--pipeline", "--plan", "pipe-net", "--nats", server.url, "--microbatches", "2", "--steps", String(steps), "--data", data, "--json"]
    const train = start([...args, "--corpus", path.join(corpus, "train.txt"), "--held-out", path.join(corpus, "heldout.txt")])
    let stdout = ""
    train.child.stdout!.on("data", (d) => (stdout += d))
    // Some steps done on pa and pb, then pb is killed.
    const done = () => Math.max(0, ...[...train.out.text.matchAll(/train (\d+)\/\d+ loss/g)].map((m) => Number(m[1])))
    await eventually(() => done() >= 6, "training under way")
    nodes[1]!.child.kill("SIGKILL")
    for (let i = 0; i < 4 && !stopped(train.child); i++) await eventually(() => stopped(train.child), "training to end").catch(() => undefined)
    expect(train.child.exitCode, train.out.text).toBe(0)
    expect(train.out.text).toMatch(/pipeline: layers 0\.\.1 on pa \| layers 2\.\.3 on pb \(plan pipe-net, epoch E9 round round_0\)/)
    const report = JSON.parse(stdout) as { heldOutLossBefore: number; heldOutLossAfter: number; appended: unknown[] }
    expect(report.heldOutLossAfter).toBeLessThan(report.heldOutLossBefore)
    expect(report.appended.length).toBeGreaterThan(0)

    const epoch = JSON.parse((await blyan(["events", "--data", data, "--stream", "epoch-E9", "--json"], env)).stdout) as Array<{ type: string; data: Record<string, unknown> }>
    const round = epoch.slice(2)
    expect(round.map((e) => e.type)).toEqual(["RoundStarted", "StageFailed", "StageFailed", "StageReassigned"])
    for (const failed of round.slice(1, 3)) expect(failed.data).toMatchObject({ epoch: "E9", round: "round_0", stage: 1, node: "pb" })
    expect(round[3]!.data).toEqual({ epoch: "E9", round: "round_0", stage: 1, from: "pb", to: "pc" })
    expect((await blyan(["audit", "--data", data, "--json"], env)).code).toBe(0)

    // The trainer reported every step on the bus; up's explorer counts them in /metrics.
    const explorer = /explorer (http:\/\/\S+)/.exec(up.out.text)![1]!
    const metrics = await (await fetch(`${explorer}/metrics`)).text()
    const count = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, "\\$&")} (\\d+)$`, "m").exec(metrics)?.[1] ?? 0)
    expect(count('blyan_pipeline_steps_total{outcome="done"}')).toBe(steps)
    expect(count('blyan_pipeline_stage_failures_total{node="pb"}')).toBe(2)
    expect(count("blyan_pipeline_stages")).toBe(2)
    expect(count('blyan_pipeline_transport_total{kind="chunks"}')).toBeGreaterThan(0)
  }, 300_000)
})
