import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Scope, Schedule } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { fetchBlob } from "../../actors/blob-exchange.ts"
import { followLog } from "../../actors/log-follower.ts"
import { registerNode } from "../../actors/registry.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { derivePublicHex } from "../../domain/ledger/signing.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { blyan } from "../support/cli.ts"
import { logOf } from "../support/log.ts"
import { ownNatsServer } from "../support/nats-server.ts"

const bin = path.resolve(import.meta.dirname, "../../bin/blyan.mjs")
const scope = Effect.runSync(Scope.make())
const children: ChildProcess[] = []
const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-up-nats-"))
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL")
  await Effect.runPromise(Scope.close(scope, Exit.void))
  fs.rmSync(root, { recursive: true, force: true })
})

const eventually = async (ok: () => boolean, what: string) => {
  for (let i = 0; i < 600 && !ok(); i++) await new Promise((r) => setTimeout(r, 50))
  if (!ok()) throw new Error(`timed out waiting for ${what}`)
}

describe("blyan up --nats: the ledger's holder serves the network", () => {
  it("serves the log, block blobs and node registration over a real nats-server; a follower's replica is the ledger", async () => {
    const server = await Effect.runPromise(ownNatsServer().pipe(Scope.extend(scope)))
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data])).code).toBe(0)
    const created = await blyan(["keys", "create", "--role", "node", "--json", "--data", data])
    expect(created.code, created.stderr).toBe(0)
    const { key } = JSON.parse(created.stdout) as { key: string }
    const up = spawn(process.execPath, [bin, "up", "--data", data, "--nats", server.url], { stdio: ["ignore", "pipe", "pipe"] })
    children.push(up)
    let out = ""
    up.stdout.on("data", (d) => (out += d))
    await eventually(() => out.includes("running"), "blyan up serving")
    expect(out).toContain(`serving the ledger, blobs, node registration, chat and rounds on ${server.url}; 0 nodes and 0 validators in this process`)

    const program = Effect.gen(function* () {
      const bus = yield* makeNatsBus([server.url])
      const replica = yield* makeMemoryEventStore()
      const followed = yield* followLog(replica, { timeoutMs: 5000 }).pipe(Effect.provideService(Bus, bus))
      const log = yield* logOf(replica)
      // Every block of the genesis model comes over the bus and hashes to its address.
      const blocks = log.filter((e) => e.type === "BlockAppended").map((e) => (e.data as { payload: string }).payload)
      expect(blocks.length).toBeGreaterThan(10)
      for (const hash of blocks.slice(0, 3)) expect(sha256Hex(yield* fetchBlob(hash, { timeoutMs: 5000 }).pipe(Effect.provideService(Bus, bus)))).toBe(hash)
      // A node registers with the key; the replica sees NodeRegistered arrive live.
      const seed = randomBytes(32).toString("hex")
      const profile = { node: "gpu-1", publicKey: derivePublicHex(seed), device: "cpu", memory: 2 ** 30, speed: 100 }
      yield* registerNode(profile, key, seed, 5000).pipe(Effect.provideService(Bus, bus))
      yield* Effect.repeat(
        Effect.map(logOf(replica), (l) => l.some((e) => e.type === "NodeRegistered")),
        { until: (seen) => seen, schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds")) }
      )
      return { followed, log: yield* logOf(replica) }
    })
    const { followed, log } = await Effect.runPromise(Effect.scoped(program))
    expect(followed.head?.seq).toBeGreaterThan(0)
    expect(log.at(-1)).toMatchObject({ stream: "node-gpu-1", type: "NodeRegistered", data: { node: "gpu-1", device: "cpu" } })
    up.kill("SIGTERM")
    await eventually(() => up.exitCode !== null, "blyan up stopped")
    // What the replica holds is what the ledger holds.
    const events = await blyan(["events", "--json", "--data", data])
    expect(events.code, events.stderr).toBe(0)
    expect(events.stdout).toContain("NodeRegistered")
  })

  it("a --nats that is not a NATS URL is a usage error naming the flag", async () => {
    const r = await blyan(["up", "--data", path.join(root, "none"), "--nats", "http://127.0.0.1:4222"])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--nats: "http://127.0.0.1:4222" is not a NATS URL')
  })
})
