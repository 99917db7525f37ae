import * as fs from "node:fs"
import * as path from "node:path"
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { segmentPath } from "../../adapters/eventstore/file-layout.ts"
import { genesisEnvelope } from "../../domain/ledger/genesis.ts"
import { encodeAppend } from "../../adapters/eventstore/file-format.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"
import { connect } from "nats"
import { testNatsUrl, uniqueName } from "../support/jetstream-fixtures.ts"

const bin = path.resolve(import.meta.dirname, "../../bin/blyan.mjs")
const corpus = path.resolve(import.meta.dirname, "../../docs/corpus")
const logOf = (dir: string) => fs.readFileSync(segmentPath(dir))
const noTrace = (r: { stdout: string; stderr: string }) => expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/)

/** Wait, in bounded steps, until `done()` holds; fails the test when it never does. */
const eventually = async (done: () => boolean, what: string) => {
  for (let i = 0; i < 600 && !done(); i++) await new Promise((r) => setTimeout(r, 100))
  expect(done(), what).toBe(true)
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("blyan on a ledger that is not there", () => {
  const missing = path.join(tempDir(), "no-such-dir")
  it("read and write commands exit 4 naming the path, and create nothing", async () => {
    for (const args of [["events"], ["keys", "list"], ["plan", "list"], ["keys", "create", "--role", "node"], ["audit"]]) {
      const r = await blyan([...args, "--data", missing])
      expect(r.code, args.join(" ")).toBe(4)
      expect(r.stderr, args.join(" ")).toContain(`no ledger at ${missing}`)
    }
    expect(fs.existsSync(missing)).toBe(false)
    const badStore = await blyan(["events", "--store", "ftp://x"])
    expect(badStore.code).toBe(2)
    expect(badStore.stderr).toMatch(/unknown scheme/)
  })

  it("a JetStream store: bad settings exit 2 naming them; a missing ledger exits 4 and creates nothing", async () => {
    for (const [store, why] of [
      ["nats://127.0.0.1:99999", /not a NATS server/],
      ["nats://127.0.0.1:4222?replicas=9", /replicas must be 1 to 5/],
      ["nats://127.0.0.1:4222?shards=2", /unknown option "shards"/],
      ["nats://127.0.0.1:4222?stream=a.b", /stream must be/]
    ] as const) {
      const r = await blyan(["events", "--store", store])
      expect(r.code, store).toBe(2)
      expect(r.stderr, store).toMatch(why)
    }
    const stream = uniqueName("T_MISSING")
    const store = `${testNatsUrl}?stream=${stream}`
    const r = await blyan(["events", "--store", store])
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`no ledger at ${store}`)
    const nc = await connect({ servers: testNatsUrl })
    const jsm = await nc.jetstreamManager()
    await expect(jsm.streams.info(stream)).rejects.toThrow(/stream not found/)
    await nc.close()
  })
})

describe("blyan refusals on a ledger", () => {
  const data = tempDir()
  const ready = blyan(["init", "--data", data])

  it("refuses bad input with a clear message and the documented exit code, changing nothing", async () => {
    expect((await ready).code).toBe(0)
    const before = logOf(data)
    const unknown = await blyan(["keys", "revoke", "--key-hash", "e".repeat(64), "--data", data, "--json"])
    expect(unknown.code).toBe(1)
    expect(JSON.parse(unknown.stdout)).toMatchObject({ ok: false, error: "KeyRefused" })
    const secret = "bly_node_SECRETSECRETSECRET"
    const raw = await blyan(["keys", "revoke", "--key-hash", secret, "--data", data])
    expect(raw.code).toBe(2)
    expect(raw.stdout + raw.stderr).not.toContain("SECRET")
    const stream = await blyan(["events", "--stream", "../../x", "--data", data])
    expect(stream.code).toBe(2)
    const dir = await blyan(["export", "--expert", "layer0.expert1", "--out", corpus, "--data", data])
    expect(dir.code).toBe(1)
    expect(dir.stderr).toMatch(/is a directory/)
    noTrace(dir)
    // Node's recursive mkdir spins forever below /proc; the export must fail at once instead.
    const proc = await blyan(["export", "--expert", "layer0.expert1", "--out", "/proc/nope/x.st", "--data", data])
    expect(proc.code).toBe(1)
    noTrace(proc)
    const binary = path.join(tempDir(), "bin.dat")
    fs.writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]))
    const notText = await blyan(["train", "--corpus", binary, "--steps", "1", "--data", data])
    expect(notText.code).toBe(1)
    expect(notText.stderr).toMatch(/not UTF-8 text/)
    const tiny = path.join(tempDir(), "one.txt")
    fs.writeFileSync(tiny, "a")
    const small = await blyan(["train", "--corpus", tiny, "--steps", "1", "--data", data])
    expect(small.code).toBe(1)
    expect(small.stderr).toMatch(/the corpus has 1 bytes/)
    expect(logOf(data).equals(before)).toBe(true)
  })

  it("a reader that stops early ends the output quietly", async () => {
    await ready
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn("bash", ["-c", `set -o pipefail; node ${JSON.stringify(bin)} events --json --data ${JSON.stringify(data)} | head -c 10 >/dev/null`])
      let stderr = ""
      child.stderr.on("data", (d) => (stderr += d))
      child.on("close", (code) => resolve({ code, stderr }))
    })
    expect(r.stderr).not.toMatch(/EPIPE/)
    expect(r.code).toBe(0)
  })

  it("init on a genesis-only ledger says it completed it; again, that it was already initialised", async () => {
    const bare = tempDir()
    fs.mkdirSync(path.join(bare, "events"))
    fs.writeFileSync(segmentPath(bare), Buffer.concat(encodeAppend([genesisEnvelope()])))
    const first = await blyan(["init", "--data", bare])
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^completed the ledger/)
    expect((await blyan(["init", "--data", bare])).stdout).toMatch(/already initialised/)
  })

  it("a lock left by a dead process warns on stderr only, so --json output stays JSON; a held lock exits 4", async () => {
    await ready
    fs.writeFileSync(path.join(data, "events", "LOCK"), "4000000\n")
    const key = await blyan(["keys", "create", "--role", "node", "--json", "--data", data])
    expect(key.code, key.stderr).toBe(0)
    expect(JSON.parse(key.stdout)).toHaveProperty("keyHash")
    expect(key.stderr).toMatch(/blyan: warn: .*LOCK was left by process 4000000/)

    const up = spawn(process.execPath, [bin, "up", "--data", data], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    up.stdout.on("data", (d) => (out += d))
    await eventually(() => out.includes("running"), "blyan up started")
    const held = await blyan(["keys", "create", "--role", "node", "--data", data])
    expect(held.code).toBe(4)
    expect(held.stderr).toMatch(/locked/)
    const audit = await blyan(["audit", "--data", data])
    expect(audit.code, audit.stderr).toBe(0)
    up.kill("SIGTERM")
    await eventually(() => up.exitCode !== null, "blyan up stopped")
  })

  it("blyan up stops when the process that started it dies, releasing the ledger", async () => {
    await ready
    // A parent (npm in real life) that starts `up`, prints its pid, and is then killed alone.
    const parent = spawn(process.execPath, ["-e", `const c = require("child_process").spawn(process.execPath, [${JSON.stringify(bin)}, "up", "--data", ${JSON.stringify(data)}], { stdio: ["ignore", "pipe", "inherit"] }); c.stdout.on("data", (d) => { if (String(d).includes("running")) console.log(c.pid) }); setInterval(() => {}, 1000)`], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let pid = 0
    parent.stdout.on("data", (d) => (pid = Number(String(d).trim())))
    await eventually(() => pid > 0, "up started under its parent")
    parent.kill("SIGKILL")
    await eventually(() => !alive(pid), "up noticed its parent was gone")
    const key = await blyan(["keys", "create", "--role", "node", "--data", data])
    expect(key.code, key.stderr).toBe(0)
  })
})

describe("a training run killed between its appends", () => {
  it("leaves its blocks and ModelTrained whole on chain B; the next init records what is missing, once", async () => {
    const data = tempDir()
    expect((await blyan(["init", "--data", data])).code).toBe(0)
    // Registered beforehand, so the run's first write is its blocks.
    expect((await blyan(["contributors", "add", "--data", data])).code).toBe(0)
    const train = [bin, "train", "--corpus", path.join(corpus, "train.txt"), "--held-out", path.join(corpus, "heldout.txt"), "--steps", "3", "--data", data]
    // The reproduction from the issue: SIGKILL at the second positioned write of the log (its
    // segment; the index beside it is derived and has writes of its own). strace counts a syscall
    // per thread, and the writes are made on libuv's pool: one pool thread makes them all.
    const killed = await new Promise<number | null>((resolve) => {
      const child = spawn("strace", ["-f", "-o", "/dev/null", "-P", segmentPath(data), "-e", "trace=pwrite64", "-e", "inject=pwrite64:signal=SIGKILL:when=2", process.execPath, ...train], {
        stdio: "ignore",
        env: { ...process.env, UV_THREADPOOL_SIZE: "1" }
      })
      child.on("close", (code) => resolve(code))
    })
    expect(killed).not.toBe(0)
    const events = async () => JSON.parse((await blyan(["events", "--data", data, "--json"])).stdout) as Array<{ stream: string; type: string }>
    const after = await events()
    const chainB = after.filter((e) => e.stream === "chain-B")
    expect(chainB.filter((e) => e.type === "BlockAppended")).toHaveLength(84)
    expect(chainB.filter((e) => e.type === "ModelTrained")).toHaveLength(1)
    const audit = JSON.parse((await blyan(["audit", "--data", data, "--json"])).stdout)
    expect(audit.ok).toBe(true)
    expect(audit.incomplete.length).toBeGreaterThan(0)
    expect((await blyan(["init", "--data", data])).stdout).toMatch(/^completed the ledger/)
    const done = await events()
    expect(done.filter((e) => e.type === "ExpertUpdated")).toHaveLength(64)
    expect(JSON.parse((await blyan(["audit", "--data", data, "--json"])).stdout)).toMatchObject({ ok: true, incomplete: [] })
  })
})
