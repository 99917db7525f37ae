import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { encodeAppend } from "../../adapters/eventstore/file-format.ts"
import { eventsDir, segmentPath } from "../../adapters/eventstore/file.ts"
import { seal, type Envelope } from "../../domain/ledger/envelope.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

/** A ledger whose writer signed its tree head after init and again after three keys were issued. */
const signedLedger = async (env: Record<string, string>) => {
  const data = tempDir()
  expect((await blyan(["init", "--data", data], env)).code).toBe(0)
  for (const role of ["node", "contributor", "validator"]) expect((await blyan(["keys", "create", "--role", role, "--data", data], env)).code).toBe(0)
  // init again: nothing to create, but the head is signed at the new size.
  expect((await blyan(["init", "--data", data], env)).code).toBe(0)
  const log = JSON.parse((await blyan(["events", "--json", "--data", data], env)).stdout) as Envelope[]
  return { data, log }
}

/** Replace the ledger's log with `log`, as an attacker with write access to the directory would (the index is derived: removed). */
const writeLog = (data: string, log: ReadonlyArray<Envelope>) => {
  for (const f of fs.readdirSync(eventsDir(data))) fs.rmSync(path.join(eventsDir(data), f))
  fs.writeFileSync(segmentPath(data), Buffer.concat(log.flatMap((e) => encodeAppend([e]))))
}

describe("signed tree heads: the ledger's key signs the log's size and Merkle root; audit holds the log to them", () => {
  const env = { BLYAN_HOME: tempDir() }

  it("an honest ledger matches every head signed for it", async () => {
    const { data } = await signedLedger(env)
    const r = await blyan(["audit", "--json", "--data", data], env)
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).treeHeads).toEqual({ matched: 2, contradicted: [], notTrusted: 0 })
    expect(fs.readFileSync(path.join(data, "tree-heads.jsonl"), "utf8")).toMatch(/^"blyan-ledger-[0-9a-f]{16}\\n\d+\\n[A-Za-z0-9+/]{43}=\\n\\n— blyan-ledger-[0-9a-f]{16} [A-Za-z0-9+/]+={0,2}\\n"$/m)
  })

  it("a key's role changed and every later hash recomputed fails audit against the head, naming both roots", async () => {
    const { data, log } = await signedLedger(env)
    const at = log.findIndex((e) => e.type === "ApiKeyIssued")
    const rewritten: Envelope[] = []
    for (const e of log) {
      const data = e.seq === at ? { ...(e.data as object), role: "admin" } : e.data
      const { hash: _, ...rest } = e
      rewritten.push(seal({ ...rest, data, prev: e.seq === 0 ? e.prev : rewritten[e.seq - 1]!.hash }))
    }
    writeLog(data, rewritten)
    // The chain itself is whole again: only the signed head tells.
    const r = await blyan(["audit", "--data", data], env)
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(new RegExp(`audit FAILED against a signed tree head: the log's first ${log.length} events have Merkle root [0-9a-f]{64}, but blyan-ledger-[0-9a-f]{16} signed root [0-9a-f]{64} for them: the log was rewritten`))
  })

  it("a log cut at a record boundary in the middle fails audit as cut short, not as a torn tail", async () => {
    const { data, log } = await signedLedger(env)
    const key = /signed by the ledger key ([0-9a-f]{64})/.exec((await blyan(["proof", "head", "--data", data], env)).stderr)![1]!
    writeLog(data, log.slice(0, log.length - 2))
    const r = await blyan(["audit", "--data", data], env)
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`the log holds ${log.length - 2} events, but`)
    expect(r.stderr).toContain(`signed a head of ${log.length}: the log was cut short`)
    // An auditor on another machine (another home, no ledger key of its own) trusts the ledger's public key.
    const elsewhere = { BLYAN_HOME: tempDir() }
    const blind = await blyan(["audit", "--json", "--data", data], elsewhere)
    expect(blind.code).toBe(0)
    expect(JSON.parse(blind.stdout).treeHeads).toMatchObject({ matched: 0, notTrusted: 2 })
    const trusting = await blyan(["audit", "--trust", key, "--data", data], elsewhere)
    expect(trusting.code).toBe(3)
    expect(trusting.stderr).toContain("the log was cut short")
    expect((await blyan(["audit", "--trust", "xyz", "--data", data], elsewhere)).code).toBe(2)
  })
})
