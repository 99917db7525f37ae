import * as path from "node:path"
import { Effect, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { blyan } from "../support/cli.ts"
import { killWhenServing } from "../support/kill-when-serving.ts"
import { ownNatsServer } from "../support/nats-server.ts"
import { blyanProcesses, eventually, stopped } from "../support/processes.ts"

const { scope, root, env, start } = blyanProcesses("nodes", { BLYAN_HEARTBEAT_MS: "100", BLYAN_REQUEST_TIMEOUT_MS: "2000" })

type Answer = {
  readonly request: string
  readonly text: string
  readonly tokens: ReadonlyArray<number>
  readonly experts: ReadonlyArray<{ readonly token: number; readonly node?: string; readonly receipt?: { readonly node: string; readonly signature: string } }>
}

const nodesOfToken = (a: Answer, t: number) => [...new Set(a.experts.filter((e) => e.token === t).map((e) => e.node))]

describe("three blyan node processes over a real nats-server", () => {
  it("a node killed with kill -9 mid-generation: the answer completes with the undisturbed tokens, its later bytes attributed to the nodes that replaced it", async () => {
    const server = await Effect.runPromise(ownNatsServer().pipe(Scope.extend(scope)))
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const created = await blyan(["keys", "create", "--role", "node", "--json", "--data", data], env)
    const { key } = JSON.parse(created.stdout) as { key: string }
    const up = start(["up", "--data", data, "--nats", server.url])
    await eventually(() => up.out.text.includes("running"), "blyan up")
    const nodes = ["n1", "n2", "n3"].map((id) => ({ id, ...start(["node", "--nats", server.url, "--api-key", key, "--data", path.join(root, id), "--node-id", id]) }))
    for (const n of nodes) await eventually(() => n.out.text.includes(`node ${n.id}: serving.steady`), `${n.id} serving`)
    // Every node also witnesses the ledger's heads, with its own key.
    for (const n of nodes) await eventually(() => n.out.text.includes("witness: co-signed the head of"), `${n.id} witnessing`)
    // Every node's announcement is recorded once the owner has checked that it computes its experts.
    for (let i = 0; ; i++) {
      const listed = JSON.parse((await blyan(["nodes", "--json", "--data", data], env)).stdout) as ReadonlyArray<{ blocks: ReadonlyArray<string> }>
      if (listed.length === 3 && listed.every((n) => n.blocks.length > 0)) break
      if (i > 100) throw new Error("the nodes' announcements were not recorded")
      await new Promise((r) => setTimeout(r, 100))
    }

    const chatArgs = ["chat", "--nats", server.url, "--json", "--max-tokens", "160", "--seed", "7", "ledgers remember"]
    const undisturbed = await blyan(chatArgs, env)
    expect(undisturbed.code, undisturbed.stderr).toBe(0)
    const calm = JSON.parse(undisturbed.stdout) as Answer
    expect(calm.tokens.length).toBe(160)
    // Every expert answer names its node and carries that node's receipt.
    for (const e of calm.experts) {
      expect(["n1", "n2", "n3"]).toContain(e.node)
      expect(e.receipt?.node).toBe(e.node)
      expect(e.receipt?.signature).toMatch(/^[0-9a-f]{128}$/)
    }

    // n2's heartbeats say when it has begun serving this chat: then it is killed.
    const victim = nodes[1]!
    const killed = Effect.runPromise(
      Effect.scoped(Effect.flatMap(makeNatsBus([server.url]), (bus) => killWhenServing(bus, victim.id, () => victim.child.kill("SIGKILL"))))
    )
    const disturbed = blyan(chatArgs, env)
    await killed
    const r = await disturbed
    expect(r.code, r.stderr).toBe(0)
    const stormy = JSON.parse(r.stdout) as Answer
    expect(stormy.tokens).toEqual(calm.tokens)
    expect(stormy.text).toBe(calm.text)
    // The last bytes were served by the nodes that took over (that n2 served the first ones, the
    // ledger's receipts say below: the prompt's rows are computed too, not only the last one's).
    const last = stormy.tokens.length - 1
    for (let t = last - 20; t <= last; t++) for (const n of nodesOfToken(stormy, t)) expect(["n1", "n3"]).toContain(n)

    // SIGTERM: the nodes drain and retire, then the ledger's holder stops.
    for (const n of [nodes[0]!, nodes[2]!]) n.child.kill("SIGTERM")
    await eventually(() => stopped(nodes[0]!.child) && stopped(nodes[2]!.child), "nodes stopped")
    up.child.kill("SIGTERM")
    await eventually(() => stopped(up.child), "blyan up stopped")
    // The ledger has the answers' receipts and the nodes' earnings; the local model gives the same bytes.
    const local = await blyan(["chat", "--json", "--data", data, "--max-tokens", "160", "--seed", "7", "ledgers remember"], env)
    expect((JSON.parse(local.stdout) as Answer).tokens).toEqual(calm.tokens)
    const listed = await blyan(["nodes", "--json", "--data", data], env)
    const registry = JSON.parse(listed.stdout) as ReadonlyArray<{ node: string; status: string; served: number; earned: string }>
    expect(registry.map((n) => n.node)).toEqual(["n1", "n2", "n3"])
    for (const n of registry) expect(BigInt(n.earned)).toBeGreaterThan(0n)
    expect(registry.find((n) => n.node === "n1")?.status).toBe("retired")
    expect(registry.find((n) => n.node === "n2")?.status).not.toBe("retired")
    const inference = JSON.parse((await blyan(["events", "--json", "--stream", "inference", "--data", data], env)).stdout) as ReadonlyArray<{
      data: { request: string; receipts: ReadonlyArray<{ node: string }> }
    }>
    const servedBy = new Set(inference.filter((e) => e.data.request === stormy.request).flatMap((e) => e.data.receipts.map((r) => r.node)))
    expect(servedBy.has(victim.id)).toBe(true)
    // A replay verifies every receipt's signature and that each reward is what its receipts earned.
    const audit = await blyan(["audit", "--data", data], env)
    expect(audit.code, audit.stderr).toBe(0)
  })
})
