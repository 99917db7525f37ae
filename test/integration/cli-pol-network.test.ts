import * as path from "node:path"
import { Effect, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { ownNatsServer } from "../support/nats-server.ts"
import { blyanProcesses, eventually, stop } from "../support/processes.ts"

const corpus = path.resolve("docs/corpus")
const { scope, root, env, start } = blyanProcesses("pol-network", { BLYAN_REQUEST_TIMEOUT_MS: "5000", BLYAN_HEARTBEAT_MS: "500", BLYAN_ROUND_DEADLINE_MS: "60000" })

describe("Proof of Learning across processes over a real nats-server", () => {
  it("improve --nats reaches the coordinator in blyan up; two validator processes, each on its own replica, accept the block; the node serving the expert swaps to it, chat attributes to it, the contributor is paid, audit verifies it all", async () => {
    const server = await Effect.runPromise(ownNatsServer().pipe(Scope.extend(scope)))
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    expect((await blyan(["contributors", "add", "--data", data], env)).code).toBe(0)
    const issued = await blyan(["keys", "create", "--role", "validator", "--json", "--data", data], env)
    const apiKey = (JSON.parse(issued.stdout) as { key: string }).key
    const up = start(["up", "--data", data, "--nats", server.url, "--nodes", "1"])
    await eventually(() => up.out.text.includes("running"), "blyan up")
    const heldOut = path.join(corpus, "heldout.txt")
    const validators = [1, 2].map((i) => start(["validator", "--nats", server.url, "--api-key", apiKey, "--held-out", heldOut, "--data", path.join(root, `v${i}`)]))
    for (const v of validators) await eventually(() => v.out.text.includes("validator: joined as"), "a validator joined")

    const r = await blyan(["improve", "--nats", server.url, "--expert", "layer1.expert0", "--steps", "40", "--corpus", path.join(corpus, "train.txt"), "--json"], env)
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as { accepted: boolean; block: string; reward: string; round: string; verdicts: Array<{ validator: string; passes: boolean }> }
    expect(report.accepted).toBe(true)
    const keys = validators.map((v) => /validator: joined as ([0-9a-f]{64})/.exec(v.out.text)![1]!)
    expect(report.verdicts.map((v) => v.validator).sort()).toEqual([...keys].sort())
    for (const v of validators) expect(v.out.text).toContain(`validator: pass on ${report.block.slice(0, 16)} in round ${report.round}`)

    // The in-process node hot-swaps to the accepted block; chat over the bus names it.
    let uses: Array<{ block: string }> = []
    for (let i = 0; i < 40 && !(uses.length > 0 && uses.every((u) => u.block === report.block)); i++) {
      const chat = await blyan(["chat", "--nats", server.url, "--json", "--max-tokens", "32", "--seed", "3", "the river"], env)
      uses = (JSON.parse(chat.stdout) as { experts: Array<{ layer: number; expert: number; block: string }> }).experts.filter((e) => e.layer === 1 && e.expert === 0)
      if (!uses.every((u) => u.block === report.block)) await new Promise((ok) => setTimeout(ok, 250))
    }
    expect(uses.length).toBeGreaterThan(0)
    for (const u of uses) expect(u.block).toBe(report.block)

    const balance = JSON.parse((await blyan(["balance", "--json", "--data", data], env)).stdout) as { units: string }
    expect(balance.units).toBe(report.reward)
    await stop(up.child)
    const audit = await blyan(["audit", "--data", data], env)
    expect(audit.code, audit.stderr).toBe(0)
  }, 300_000)
})
