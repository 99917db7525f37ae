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
})
