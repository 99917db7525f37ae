import * as path from "node:path"
import { Effect, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { ownNatsServer } from "../support/nats-server.ts"
import { blyanProcesses, eventually, pipelineNetworkSettings, stopped } from "../support/processes.ts"

const corpus = path.resolve("docs/corpus")
const { scope, root, env, start } = blyanProcesses("epoch-network", pipelineNetworkSettings)

type Logged = { type: string; data: Record<string, unknown> }

describe("a training epoch on node processes over a real nats-server, its ledger shared on JetStream", () => {
  it("train --pipeline --epoch plans on the registered nodes (their measured link recorded), freezes the plan and trains its rounds; killed with -9 mid-round and started again, it resumes from the last checkpoint and completes: loss down, audit passes", async () => {
    const server = await Effect.runPromise(ownNatsServer().pipe(Scope.extend(scope)))
    const store = ["--store", server.url]
    expect((await blyan(["init", ...store], env)).code).toBe(0)
    const apiKey = (JSON.parse((await blyan(["keys", "create", "--role", "node", "--json", ...store], env)).stdout) as { key: string }).key
    const up = start(["up", ...store, "--nats", server.url, "--port", "0", "--train-steps", "0"])
    await eventually(() => up.out.text.includes("running"), "blyan up")
    const ids = ["ea", "eb", "ec"]
    const nodes = ids.map((id) => start(["node", "--nats", server.url, "--api-key", apiKey, "--node-id", id, "--data", path.join(root, id)]))
    for (const [i, n] of nodes.entries()) await eventually(() => n.out.text.includes(`node ${ids[i]}: serving`), `node ${ids[i]} serving`)

    const texts = ["--corpus", path.join(corpus, "train.txt"), "--held-out", path.join(corpus, "heldout.txt")]
    const args = ["train", "--pipeline", "--epoch", "E7", "--rounds", "2", "--steps", "12", "--lr", "0.01", "--microbatches", "2", "--nats", server.url, ...store, ...texts]
    const events = async () => JSON.parse((await blyan(["events", ...store, "--stream", "epoch-E7", "--json"], env)).stdout) as Logged[]
    // The first run is killed in its second round (steps 13..24), after the first round's checkpoint.
    const first = start(args)
    const done = () => Math.max(0, ...[...first.out.text.matchAll(/epoch E7 (\d+)\/24 loss/g)].map((m) => Number(m[1])))
    await eventually(() => done() >= 15, "the second round under way")
    first.child.kill("SIGKILL")
    await eventually(() => stopped(first.child), "the killed trainer gone")
    const again = start([...args, "--json"])
    let stdout = ""
    again.child.stdout!.on("data", (d) => (stdout += d))
    for (let i = 0; i < 4 && !stopped(again.child); i++) await eventually(() => stopped(again.child), "the epoch to end").catch(() => undefined)
    expect(again.child.exitCode, again.out.text).toBe(0)
    const ran = JSON.parse(stdout) as { status: string; lossBefore: number; lossAfter: number }
    expect(ran.status).toBe("completed")
    expect(ran.lossAfter).toBeLessThan(ran.lossBefore)

    const log = await events()
    const types = log.map((e) => e.type)
    expect(types.slice(0, 5)).toEqual(["EpochScheduled", "EpochPlanned", "PlanPromoted", "RoundStarted", "RoundCompleted"])
    // The round the kill cut off is recorded as failed, then run again; the epoch completes once.
    expect(types.slice(5).filter((t) => t.startsWith("Round"))).toEqual(["RoundStarted", "RoundFailed", "RoundStarted", "RoundCompleted"])
    expect(types.at(-1)).toBe("EpochCompleted")
    const plan = log[1]!.data.plan as { stages: ReadonlyArray<{ node: string; start: number; end: number }> }
    for (const s of plan.stages) expect(ids).toContain(s.node)
    expect(plan.stages.at(-1)!.end).toBe(3)
    // Each node registered its measured link, which the plan was made with.
    const nodeLog = JSON.parse((await blyan(["events", ...store, "--stream", "node-ea", "--json"], env)).stdout) as Logged[]
    expect(nodeLog.find((e) => e.type === "NodeRegistered")!.data.bandwidth).toBeGreaterThan(0)
    expect((await blyan(["audit", ...store, "--json"], env)).code).toBe(0)
  }, 300_000)
})
