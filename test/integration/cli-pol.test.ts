import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

const corpus = path.resolve("docs/corpus")

describe("Proof of Learning from the command line, one machine", () => {
  it("improve trains one expert and a round of local validators accepts it: the block is current, chat attributes to it, the contributor is paid, audit verifies it all", async () => {
    const env = { BLYAN_HOME: tempDir() }
    const data = tempDir()
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const r = await blyan(
      ["improve", "--expert", "layer1.expert0", "--steps", "20", "--corpus", path.join(corpus, "train.txt"), "--held-out", path.join(corpus, "heldout.txt"), "--json", "--data", data],
      env
    )
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as { accepted: boolean; block: string; reward: string; verdicts: Array<{ passes: boolean; improvement: number }>; round: string }
    expect(report.accepted).toBe(true)
    expect(report.verdicts.filter((v) => v.passes).length).toBeGreaterThanOrEqual(2)
    const chat = JSON.parse((await blyan(["chat", "--json", "--max-tokens", "32", "--seed", "3", "--data", data, "the river"], env)).stdout) as { experts: Array<{ layer: number; expert: number; block: string }> }
    const uses = chat.experts.filter((e) => e.layer === 1 && e.expert === 0)
    expect(uses.length).toBeGreaterThan(0)
    for (const u of uses) expect(u.block).toBe(report.block)
    const balance = JSON.parse((await blyan(["balance", "--json", "--data", data], env)).stdout) as { units: string }
    expect(balance.units).toBe(report.reward)
    const round = JSON.parse((await blyan(["events", "--json", "--stream", `round-${report.round}`, "--data", data], env)).stdout) as Array<{ type: string }>
    // Two passing verdicts of three are the quorum: the round is decided without the third.
    expect(round.map((e) => e.type)).toEqual(["RoundOpened", "ContributionSubmitted", "PoLEvaluated", "PoLEvaluated", "ContributionAccepted", "RoundClosed"])
    const audit = await blyan(["audit", "--data", data], env)
    expect(audit.code, audit.stderr).toBe(0)
  }, 120_000)

  it("submit of a part's current weights is rejected as a copy, exit 1 with the reason; bad arguments are usage errors", async () => {
    const env = { BLYAN_HOME: tempDir() }
    const data = tempDir()
    const dir = tempDir()
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const weights = path.join(dir, "e.safetensors")
    expect((await blyan(["export", "--expert", "layer0.expert1", "--out", weights, "--data", data], env)).code).toBe(0)
    const r = await blyan(["submit", "--expert", "layer0.expert1", "--weights", weights, "--held-out", path.join(corpus, "heldout.txt"), "--json", "--data", data], env)
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout)).toMatchObject({ accepted: false, reason: expect.stringMatching(/^copy: a copy of block [0-9a-f]{64}/), verdicts: [] })
    expect((await blyan(["audit", "--data", data], env)).code).toBe(0)
    const wrong = await blyan(["submit", "--expert", "layer0.expert2", "--weights", weights, "--held-out", path.join(corpus, "heldout.txt"), "--data", data], env)
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain("holds part layer0.expert1, not layer0.expert2")
    expect((await blyan(["improve", "--expert", "layer0.expert1", "--steps", "0", "--corpus", path.join(corpus, "train.txt"), "--data", data], env)).code).toBe(2)
    expect((await blyan(["submit", "--expert", "layer0.expert1", "--weights", weights, "--held-out", path.join(corpus, "heldout.txt"), "--validators", "0", "--data", data], env)).code).toBe(2)
  }, 60_000)
})
