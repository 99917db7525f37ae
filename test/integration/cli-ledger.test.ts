import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import { segmentPath } from "../../adapters/eventstore/file-layout.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { defaultSpec, partNames } from "../../domain/model/spec.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

describe("blyan CLI: ledger commands", () => {
  const data = tempDir()

  it("init writes genesis once, keys create records only the key's hash, audit verifies", async () => {
    const first = await blyan(["init", "--data", data, "--json"])
    expect(first.code).toBe(0)
    const init = JSON.parse(first.stdout)
    expect(init).toMatchObject({ created: true, genesis: GENESIS_HASH, blocksPublished: partNames(defaultSpec).length })
    const again = JSON.parse((await blyan(["init", "--data", data, "--json"])).stdout)
    expect(again).toMatchObject({ created: false, blocksPublished: 0, head: init.head, spec: init.spec })

    const key = await blyan(["keys", "create", "--role", "validator", "--data", data, "--json"])
    expect(key.code).toBe(0)
    const issued = JSON.parse(key.stdout)
    expect(issued.keyHash).toBe(sha256Hex(issued.key))
    expect(fs.readFileSync(segmentPath(data)).includes(issued.key)).toBe(false)

    const events = JSON.parse((await blyan(["events", "--data", data, "--json"])).stdout)
    expect(events.slice(0, 3).map((e: { type: string }) => e.type)).toEqual(["GenesisCovenantSealed", "ModelSpecPublished", "BlockAppended"])
    expect(events.at(-1).data).toEqual({ keyHash: issued.keyHash, role: "validator" })
    expect(JSON.parse((await blyan(["events", "--data", data, "--stream", "keys", "--json"])).stdout)).toHaveLength(1)

    const audit = await blyan(["audit", "--data", data, "--json"])
    expect(audit.code).toBe(0)
    expect(JSON.parse(audit.stdout)).toMatchObject({ ok: true, events: events.length, genesis: GENESIS_HASH, head: { seq: events.length - 1 }, keys: 1, blocks: partNames(defaultSpec).length })
  })

  it("audit exits 3 (integrity) and names the first bad seq when a record is altered", async () => {
    const copy = tempDir()
    fs.cpSync(data, copy, { recursive: true })
    const seg = segmentPath(copy)
    const bytes = fs.readFileSync(seg)
    const at = bytes.lastIndexOf(Buffer.from("validator"))
    bytes.write("validatoR", at)
    fs.writeFileSync(seg, bytes)
    const audit = await blyan(["audit", "--data", copy])
    expect(audit.code).toBe(3)
    const keySeq = JSON.parse((await blyan(["events", "--data", data, "--stream", "keys", "--json"])).stdout)[0].seq
    expect(audit.stderr).toMatch(new RegExp(`seq ${keySeq}\\b`))
  })

  it("refuses bad arguments with a message and a non-zero exit, changing nothing", async () => {
    const before = fs.readFileSync(segmentPath(data))
    const badRole = await blyan(["keys", "create", "--role", "king", "--data", data])
    expect(badRole.code).not.toBe(0)
    expect(badRole.stdout + badRole.stderr).toMatch(/role/i)
    const badFrom = await blyan(["events", "--data", data, "--from", "-3"])
    expect(badFrom.code).not.toBe(0)
    expect(badFrom.stderr).toMatch(/--from/)
    const empty = tempDir()
    const emptyAudit = await blyan(["audit", "--data", empty])
    expect(emptyAudit.code).toBe(4)
    expect(emptyAudit.stderr).toContain(`no ledger at ${empty}`)
    expect(fs.readFileSync(segmentPath(data)).equals(before)).toBe(true)
  })
})
