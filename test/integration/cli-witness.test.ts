import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Scope, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { encodeAppend } from "../../adapters/eventstore/file-format.ts"
import { eventsDir, segmentPath } from "../../adapters/eventstore/file.ts"
import { seal, type Envelope } from "../../domain/ledger/envelope.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { blyan } from "../support/cli.ts"
import { ownNatsServer } from "../support/nats-server.ts"
import { blyanProcesses, eventually, stop } from "../support/processes.ts"

const { scope, root, env, start } = blyanProcesses("witness", { BLYAN_REQUEST_TIMEOUT_MS: "2000", BLYAN_WITNESS_WAIT_MS: "1500" })

describe("two witness processes over a real nats-server", () => {
  it("co-sign the ledger's heads; after the log is rewritten at an old seq, both refuse the new head, record and report the fork, and audit --witness catches what the ledger's own heads no longer can", async () => {
    const server = await Effect.runPromise(ownNatsServer().pipe(Scope.extend(scope)))
    const reports: string[] = []
    await Effect.runPromise(
      Effect.gen(function* () {
        const bus = yield* makeNatsBus([server.url])
        yield* Effect.forkIn(Stream.runForEach(yield* bus.subscribe(Subjects.witnessFork), (m) => Effect.sync(() => void reports.push(new TextDecoder().decode(m.data)))), scope)
      }).pipe(Scope.extend(scope))
    )
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    expect((await blyan(["keys", "create", "--role", "node", "--data", data], env)).code).toBe(0)
    let up = start(["up", "--data", data, "--nats", server.url])
    await eventually(() => up.out.text.includes("running"), "blyan up")
    const ledgerKey = /signed by the ledger key ([0-9a-f]{64})/.exec((await blyan(["proof", "head", "--data", data], env)).stderr)![1]!
    const log = JSON.parse((await blyan(["events", "--json", "--data", data], env)).stdout) as Envelope[]

    // One witness is told the ledger's key; the other trusts the first it meets.
    const witnesses = [
      start(["witness", "--nats", server.url, "--data", path.join(root, "w1"), "--ledger-key", ledgerKey, "--interval-ms", "100"]),
      start(["witness", "--nats", server.url, "--data", path.join(root, "w2"), "--interval-ms", "100"])
    ]
    for (const w of witnesses) await eventually(() => w.out.text.includes(`witness: co-signed the head of ${log.length} events`), "a co-signed head")
    expect(witnesses[1]!.out.text).toContain(`following the ledger key ${ledgerKey}, trusted on first use`)
    const witnessedAudit = await blyan(["audit", "--json", "--data", data, "--witness", server.url], env)
    expect(witnessedAudit.code, witnessedAudit.stderr).toBe(0)
    expect(JSON.parse(witnessedAudit.stdout).witnessed).toMatchObject({ witnesses: 2 })

    // The attacker holds the machine: stops the ledger, makes the node key an admin key, re-chains
    // every later event, erases the signed heads kept beside the log, and lets the ledger go on.
    await stop(up.child)
    const at = log.findIndex((e) => e.type === "ApiKeyIssued")
    const rewritten: Envelope[] = []
    for (const e of log) {
      const { hash: _, ...rest } = e
      rewritten.push(seal({ ...rest, data: e.seq === at ? { ...(e.data as object), role: "admin" } : e.data, prev: e.seq === 0 ? e.prev : rewritten[e.seq - 1]!.hash }))
    }
    for (const f of fs.readdirSync(eventsDir(data))) fs.rmSync(path.join(eventsDir(data), f))
    fs.writeFileSync(segmentPath(data), Buffer.concat(rewritten.flatMap((e) => encodeAppend([e]))))
    fs.rmSync(path.join(data, "tree-heads.jsonl"))
    expect((await blyan(["keys", "create", "--role", "validator", "--data", data], env)).code).toBe(0)
    up = start(["up", "--data", data, "--nats", server.url])
    await eventually(() => up.out.text.includes("running"), "blyan up again")

    for (const w of witnesses) await eventually(() => w.out.text.includes("witness: FORK:"), "the fork reported")
    for (const w of witnesses) expect(w.out.text, w.out.text).toMatch(new RegExp(`FORK: the log of ${log.length + 1} events \\(root [0-9a-f]{64}\\) is not shown to extend the ${log.length} witnessed`))
    await eventually(() => reports.length >= 2, "both reports on the bus")
    expect(new Set(reports.map((r) => JSON.parse(r).witness)).size).toBe(2)
    for (const dir of ["w1", "w2"]) {
      const own = JSON.parse((await blyan(["events", "--json", "--stream", "witness", "--data", path.join(root, dir, "log")], env)).stdout) as Envelope[]
      expect(own.map((e) => e.type)).toEqual(["TreeHeadForked"])
      expect((own[0]!.data as { offered: string }).offered).toContain(`\n${log.length + 1}\n`)
    }

    // The ledger's own heads now agree with the rewritten log; the witnesses' copies do not.
    expect((await blyan(["audit", "--data", data], env)).code).toBe(0)
    const fromFile = await blyan(["audit", "--data", data, "--witness", path.join(root, "w1", "tree-heads.jsonl")], env)
    expect(fromFile.code).toBe(3)
    expect(fromFile.stderr).toMatch(/audit FAILED against a signed tree head: the log's first \d+ events have Merkle root [0-9a-f]{64}, but blyan-ledger-[0-9a-f]{16} \(witnessed by [0-9a-f]{16}(, [0-9a-f]{16})*\) signed root/)
    const fromBus = await blyan(["audit", "--data", data, "--witness", server.url], env)
    expect(fromBus.code).toBe(3)
    expect(fromBus.stderr).toContain("the log was rewritten")
    for (const c of [...witnesses, up]) await stop(c.child)
  })
})
