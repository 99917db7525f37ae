import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

describe("blyan balance and blyan transfer", () => {
  it("shows balances and the supply; refuses a transfer it cannot cover, or a malformed amount, recording nothing", async () => {
    const env = { BLYAN_HOME: tempDir() }
    const data = tempDir()
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const mine = await blyan(["balance", "--json", "--data", data], env)
    expect(mine.code, mine.stderr).toBe(0)
    const { address, units, supply } = JSON.parse(mine.stdout) as { address: string; units: string; supply: string }
    expect(address).toMatch(/^[0-9a-f]{64}$/)
    expect([units, supply]).toEqual(["0", "0"])
    const before = (await blyan(["events", "--json", "--data", data], env)).stdout
    const broke = await blyan(["transfer", "--to", "n1", "--amount", "0.5", "--data", data], env)
    expect(broke.code).toBe(1)
    expect(broke.stderr).toContain(`transfer refused: ${address} holds 0 base units, not 500000000000000000`)
    for (const amount of ["-1", "1.2.3", "0.0000000000000000001"]) {
      const r = await blyan(["transfer", "--to", "n1", "--amount", amount, "--data", data], env)
      expect(r.code, amount).toBe(2)
      expect(r.stderr).toContain("--amount must be BLY in decimals")
    }
    const lonely = await blyan(["transfer", "--to", "n1", "--amount", "1", "--node-data", tempDir(), "--data", data], env)
    expect(lonely.code).toBe(2)
    expect((await blyan(["events", "--json", "--data", data], env)).stdout).toBe(before)
  })
})
