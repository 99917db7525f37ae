import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

describe("blyan proof and blyan verify", () => {
  it("proves an event's inclusion and a prefix's consistency from the log; verify checks them without it, and refuses an altered proof or another root", async () => {
    const data = tempDir()
    expect((await blyan(["init", "--data", data])).code).toBe(0)
    const dir = tempDir()
    const save = async (name: string, args: ReadonlyArray<string>) => {
      const r = await blyan([...args, "--data", data])
      expect(r.code, r.stderr).toBe(0)
      fs.writeFileSync(path.join(dir, name), r.stdout)
      return JSON.parse(r.stdout) as { root?: string; toRoot?: string; size?: number; hash?: string }
    }
    const events = JSON.parse((await blyan(["events", "--json", "--data", data])).stdout) as ReadonlyArray<{ seq: number; hash: string }>
    const inc = await save("inc.json", ["proof", "inclusion", "--seq", "7"])
    expect(inc).toMatchObject({ size: events.length, hash: events[7]!.hash })
    const con = await save("con.json", ["proof", "consistency", "--from", "3"])
    expect(con.toRoot).toBe(inc.root)
    // Without the log: a data directory is never opened.
    for (const f of ["inc.json", "con.json"]) {
      const ok = await blyan(["verify", "--proof", path.join(dir, f), "--root", inc.root!])
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stdout).toMatch(/^OK: /)
    }
    const other = await blyan(["verify", "--proof", path.join(dir, "inc.json"), "--root", "0".repeat(64)])
    expect(other.code).toBe(3)
    expect(other.stderr).toContain(`the proof is against root ${inc.root}, not ${"0".repeat(64)}`)
    fs.writeFileSync(path.join(dir, "bad.json"), fs.readFileSync(path.join(dir, "inc.json"), "utf8").replace(events[7]!.hash, events[8]!.hash))
    const bad = await blyan(["verify", "--proof", path.join(dir, "bad.json")])
    expect(bad.code).toBe(3)
    expect(bad.stderr).toContain("the inclusion proof of seq 7 does not lead to root")
    // Against the ledger's signed tree head, with its public key: size and root both bound.
    const head = await blyan(["proof", "head", "--data", data])
    expect(head.code, head.stderr).toBe(0)
    const key = /signed by the ledger key ([0-9a-f]{64})/.exec(head.stderr)![1]!
    fs.writeFileSync(path.join(dir, "head.note"), head.stdout)
    expect((await blyan(["verify", "--proof", path.join(dir, "inc.json"), "--head", path.join(dir, "head.note"), "--key", key])).code).toBe(0)
    const stranger = await blyan(["verify", "--proof", path.join(dir, "inc.json"), "--head", path.join(dir, "head.note"), "--key", "ab".repeat(32)])
    expect(stranger.code).toBe(3)
    expect(stranger.stderr).toContain("no signature of a trusted key")
    const older = await save("older.json", ["proof", "inclusion", "--seq", "2", "--size", "5"])
    const smaller = await blyan(["verify", "--proof", path.join(dir, "older.json"), "--head", path.join(dir, "head.note"), "--key", key])
    expect(smaller.code).toBe(3)
    expect(smaller.stderr).toContain(`the proof is against root ${older.root}`)
    const beyond = await blyan(["proof", "inclusion", "--seq", String(events.length), "--data", data])
    expect(beyond.code).toBe(1)
    expect(beyond.stderr).toContain(`seq ${events.length} is not among the ${events.length} events of the tree`)
  })

  it("chat --prove attaches a signed head and an inclusion proof per block; verify --answer holds every block to them, and refuses a changed block, a missing proof or another key", async () => {
    const data = tempDir()
    const env = { BLYAN_HOME: tempDir() }
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const key = /signed by the ledger key ([0-9a-f]{64})/.exec((await blyan(["proof", "head", "--data", data], env)).stderr)![1]!
    const r = await blyan(["chat", "--prove", "--json", "--max-tokens", "3", "--data", data, "tides"], env)
    expect(r.code, r.stderr).toBe(0)
    const answer = JSON.parse(r.stdout) as { experts: Array<{ block: string }>; proofs: { checkpoint: string; proofs: Array<{ envelope: { data: { payload: string } }; proof: string[] }> } }
    const blocks = new Set(answer.experts.map((e) => e.block))
    expect(answer.proofs.proofs).toHaveLength(blocks.size)
    // A few hundred bytes of hashes per block: log2 of the log's size.
    for (const p of answer.proofs.proofs) expect(p.proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(200)))
    const dir = tempDir()
    const check = async (name: string, a: unknown, k = key) => {
      fs.writeFileSync(path.join(dir, name), JSON.stringify(a))
      return blyan(["verify", "--answer", path.join(dir, name), "--key", k])
    }
    const ok = await check("ok.json", answer)
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain(`OK: ${blocks.size} blocks are on the log of`)
    const changed = structuredClone(answer)
    changed.proofs.proofs[0]!.envelope.data.payload = "0".repeat(64)
    expect((await check("changed.json", changed)).stderr).toMatch(/no proof that block|does not hash to/)
    const missing = structuredClone(answer)
    missing.proofs.proofs.pop()
    const m = await check("missing.json", missing)
    expect(m.code).toBe(3)
    expect(m.stderr).toContain("no proof that block")
    expect((await check("other.json", answer, "ab".repeat(32))).code).toBe(3)
    expect((await blyan(["verify", "--answer", path.join(dir, "ok.json")])).code).toBe(2)
  })
})
