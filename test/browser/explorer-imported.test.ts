import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { chromium } from "playwright-core"
import { blyan } from "../support/cli.ts"
import { tinyQwen3MoeConfig } from "../support/family-weights.ts"
import { writeHfCheckpoint } from "../support/hf-checkpoint.ts"
import { blyanProcesses, eventually, stop } from "../support/processes.ts"

const CHROMIUM = "/usr/bin/chromium"
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const TOKENS = 8

const { root, env, start } = blyanProcesses("explorer-imported", { BLYAN_HEARTBEAT_MS: "100" })

describe("the explorer's chat with an imported model", () => {
  it("the page chats with the latest model, an import, by default: each token shown with its text and the experts, blocks and node that produced it; the built-in model when chosen", async () => {
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const c = writeHfCheckpoint(path.join(root, "tiny-qwen"), tinyQwen3MoeConfig)
    expect((await blyan(["import", "--hf", c.dir, "--data", data], env)).code).toBe(0)
    const up = start(["up", "--json", "--data", data, "--nodes", "1", "--train-steps", "0", "--port", "0"])
    await eventually(() => /"explorer": "http/.test(up.out.text) && up.out.text.includes("node local-1: serving.steady"), "blyan up serving")
    const explorer = /"explorer": "([^"]+)"/.exec(up.out.text)![1]!
    const model = (await fetch(`${explorer}/api/model`).then((r) => r.json())) as { parts: Array<{ name: string; block: string }>; latest: string }
    expect(model.latest).toBe("tiny-qwen")
    const qwenExperts = new Set(model.parts.filter((p) => p.name.startsWith("tiny-qwen/") && p.name.includes(".expert")).map((p) => p.block.slice(0, 16)))

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
    let asked: { seed: number; text: string } | undefined
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      await page.goto(explorer)
      await page.getByTestId("model").locator("option", { hasText: "latest (tiny-qwen)" }).waitFor({ state: "attached" })
      await page.getByTestId("prompt").fill("the theater")
      await page.getByTestId("max-tokens").fill(String(TOKENS))
      await page.getByTestId("chat-send").click()
      const status = page.getByTestId("chat-status").getByText(new RegExp(`^answered: ${TOKENS} token\\(s\\), request chat-\\S+ \\(model tiny-qwen, seed \\d+\\)`))
      await status.waitFor({ timeout: 60_000 })
      const seed = Number(/seed (\d+)/.exec((await status.textContent())!)![1])
      // One span per token, in order; together they are the answer's text.
      const spans = page.locator('[data-testid="answer"] span')
      expect(await spans.evaluateAll((s) => s.map((x) => x.getAttribute("data-tokens")))).toEqual(Array.from({ length: TOKENS }, (_, i) => `${i}-${i}`))
      asked = { seed, text: (await page.getByTestId("answer").textContent())! }
      await spans.first().click()
      const rows = await page.locator('[data-testid="attribution"] tr').evaluateAll((trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent!)))
      expect(rows).toHaveLength(tinyQwen3MoeConfig.num_hidden_layers * tinyQwen3MoeConfig.num_experts_per_tok)
      for (const [token, , , , block, node] of rows) {
        expect(token).toMatch(/^#0 id \d+$/)
        expect(node).toBe("local-1")
        expect(qwenExperts.has(block!.replace("…", ""))).toBe(true)
      }

      await page.getByTestId("model").selectOption("blyan-moe")
      await page.getByTestId("chat-send").click()
      await page.getByTestId("chat-status").getByText(new RegExp(`^answered: ${TOKENS} byte\\(s\\), request chat-\\S+ \\(model blyan-moe, seed \\d+\\)`)).waitFor({ timeout: 60_000 })
    } finally {
      await browser.close()
    }
    await stop(up.child)
    // The same prompt and seed here give the text the page showed.
    const local = await blyan(["chat", "the theater", "--json", "--max-tokens", String(TOKENS), "--seed", String(asked!.seed), "--data", data], env)
    expect(local.code, local.stderr).toBe(0)
    expect((JSON.parse(local.stdout) as { text: string }).text).toBe(asked!.text)
  }, 180_000)
})
