import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { encodeAppend } from "../../adapters/eventstore/file-format.ts"
import { eventsDir, segmentPath } from "../../adapters/eventstore/file.ts"
import { seal, type Envelope } from "../../domain/ledger/envelope.ts"
import { signBlock, headerOf } from "../../domain/ledger/blocks.ts"
import type { BlockAppendedData } from "../../domain/ledger/events.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { GENESIS_CONTRIBUTOR_SEED } from "../../domain/model/blocks.ts"
import { signRegistration } from "../../domain/projections/contributors.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

const corpus = path.resolve("docs/corpus/train.txt")

/** The log with `more` appended as an attacker with write access to the directory would: every link valid. */
const appendAsAttacker = (data: string, log: ReadonlyArray<Envelope>, more: ReadonlyArray<{ readonly stream: string; readonly type: string; readonly data: unknown }>) => {
  const out = [...log]
  for (const m of more) {
    const last = out[out.length - 1]!
    out.push(seal({ seq: last.seq + 1, stream: m.stream, type: m.type, version: 1, at: "2026-12-03T00:00:00.000Z", data: m.data, prev: last.hash }))
  }
  for (const f of fs.readdirSync(eventsDir(data))) fs.rmSync(path.join(eventsDir(data), f))
  fs.writeFileSync(segmentPath(data), Buffer.concat(out.flatMap((e) => encodeAppend([e]))))
}

/** A new version of the model's first expert block, by `seed`: its payload is a blob already stored. */
const forgedBlock = (log: ReadonlyArray<Envelope>, seed: string): BlockAppendedData => {
  const base = log.find((e) => e.type === "BlockAppended" && (e.data as BlockAppendedData).name === "layer0.expert0")!.data as BlockAppendedData
  return signBlock({ ...headerOf(base), dependsOn: [base.hash], contributor: keyPairFromSeed(seed).publicKey }, seed)
}

describe("known writers: the ledger accepts blocks only from contributors its ledger key registered", () => {
  const env = { BLYAN_HOME: tempDir() }
  const attacker = sha256Hex("attacker")
  const contributor = keyPairFromSeed(sha256Hex("a registered contributor"))

  const ledger = async () => {
    const data = tempDir()
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const added = await blyan(["contributors", "add", "--key", contributor.publicKey, "--label", "alice", "--data", data], env)
    expect(added.code, added.stderr).toBe(0)
    const log = JSON.parse((await blyan(["events", "--json", "--data", data], env)).stdout) as Envelope[]
    return { data, log }
  }

  it("a registration is signed by the ledger key, listed, and audits", async () => {
    const { data } = await ledger()
    const listed = JSON.parse((await blyan(["contributors", "list", "--json", "--data", data], env)).stdout)
    expect(listed).toMatchObject([{ publicKey: contributor.publicKey, label: "alice", active: true }])
    const audit = await blyan(["audit", "--json", "--data", data], env)
    expect(audit.code, audit.stderr).toBe(0)
    expect(JSON.parse(audit.stdout).contributors).toBe(1)
    // Twice is refused, and changes nothing.
    const again = await blyan(["contributors", "add", "--key", contributor.publicKey, "--data", data], env)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("already registered")
    expect((await blyan(["contributors", "add", "--key", "nothex", "--data", data], env)).code).toBe(2)
  })

  it("a block from a key nobody registered, appended with every link valid, fails audit at its seq", async () => {
    const { data, log } = await ledger()
    appendAsAttacker(data, log, [{ stream: "chain-B", type: "BlockAppended", data: forgedBlock(log, attacker) }])
    const r = await blyan(["audit", "--data", data], env)
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`audit FAILED at seq ${log.length}: block layer0.expert0: its contributor ${keyPairFromSeed(attacker).publicKey} is not registered on this ledger`)
  })

  it("a registration signed by a key that is not the ledger's fails audit, and so does the block after it", async () => {
    const { data, log } = await ledger()
    const registration = signRegistration(keyPairFromSeed(attacker).publicKey, attacker)
    appendAsAttacker(data, log, [
      { stream: "keys", type: "ContributorRegistered", data: registration },
      { stream: "chain-B", type: "BlockAppended", data: forgedBlock(log, attacker) }
    ])
    const r = await blyan(["audit", "--data", data], env)
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`audit FAILED at seq ${log.length}: registration of contributor ${registration.publicKey}: it is signed by ${registration.registrar}, which is not a ledger key trusted here`)
  })

  it("the public genesis key signs only the seeded genesis weights: any other block by it fails audit", async () => {
    const { data, log } = await ledger()
    appendAsAttacker(data, log, [{ stream: "chain-B", type: "BlockAppended", data: forgedBlock(log, GENESIS_CONTRIBUTOR_SEED) }])
    const r = await blyan(["audit", "--data", data], env)
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("it is signed by the public genesis key, which may sign only the seeded genesis weights")
  })

  it("a revoked contributor's later block fails audit; the revocation itself audits", async () => {
    const { data } = await ledger()
    const revoked = await blyan(["contributors", "revoke", "--key", contributor.publicKey, "--reason", "key leaked", "--data", data], env)
    expect(revoked.code, revoked.stderr).toBe(0)
    const log = JSON.parse((await blyan(["events", "--json", "--data", data], env)).stdout) as Envelope[]
    expect((await blyan(["audit", "--data", data], env)).code).toBe(0)
    appendAsAttacker(data, log, [{ stream: "chain-B", type: "BlockAppended", data: forgedBlock(log, contributor.seed) }])
    const r = await blyan(["audit", "--data", data], env)
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`its contributor ${contributor.publicKey} was revoked at seq ${log.length - 1}`)
  })

  it("a machine without the ledger key can neither register contributors nor train on a ledger that does not know its key", async () => {
    const { data } = await ledger()
    const elsewhere = { BLYAN_HOME: tempDir() }
    const add = await blyan(["contributors", "add", "--key", contributor.publicKey, "--data", data], elsewhere)
    expect(add.code).toBe(1)
    expect(add.stderr).toContain("this machine holds no ledger key")
    const before = (await blyan(["events", "--json", "--data", data], env)).stdout
    const train = await blyan(["train", "--corpus", corpus, "--steps", "1", "--data", data], elsewhere)
    expect(train.code).toBe(1)
    expect(train.stderr).toMatch(/this ledger accepts no blocks from this key: its contributor [0-9a-f]{64} is not registered on this ledger/)
    expect((await blyan(["events", "--json", "--data", data], env)).stdout).toBe(before)
  })
})
