import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { chromium } from "playwright-core"
import { blyanProcesses, eventually, stop } from "../support/processes.ts"

const SHOTS = path.resolve("artifacts/screenshots")
const CHROMIUM = "/usr/bin/chromium"
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const STEPS = 5

const { root, start } = blyanProcesses("explorer-up", { BLYAN_HEARTBEAT_MS: "100" })

/** What `up --json` says of itself (on stdout, among the progress lines of stderr), once it is out. */
const summaryOf = async (out: { text: string }) => {
  const summary = () => /^\{\n[^]*?\n\}$/m.exec(out.text)?.[0]
  await eventually(() => summary() !== undefined, "blyan up's summary")
  return JSON.parse(summary()!) as { explorer: string; training: number | null }
}

const getJson = async <A>(url: string) => (await fetch(url).then((r) => r.json())) as A

describe("blyan up (npm start) with its page in Chromium", () => {
  it("a fresh ledger's first start trains the model on the shipped corpus, its blocks recorded; the page chats, each character naming the experts, blocks and node that produced it; the next start does not train again", async () => {
    fs.mkdirSync(SHOTS, { recursive: true })
    const data = path.join(root, "ledger")
    const first = start(["up", "--json", "--data", data, "--nodes", "1", "--train-steps", String(STEPS)])
    const summary = await summaryOf(first.out)
    expect(summary.training).toBe(STEPS)
    // Progress, then the blocks recorded, then the node serving them.
    await eventually(() => first.out.text.includes(`blyan up: training ${STEPS}/${STEPS} loss`), "training progress")
    await eventually(() => /trained \d+ steps: .*appended \d+ improved blocks/.test(first.out.text), "the trained blocks recorded")
    await eventually(() => /node local-1: serving\.swapping\n(.*\n)*.*node local-1: serving\.steady/.test(first.out.text.slice(first.out.text.indexOf("improved blocks"))), "the node serving them")
    const history = await getJson<{ versions: Array<{ reason: string }> }>(`${summary.explorer}/api/experts/layer0.expert0/history`)
    expect(history.versions.map((v) => v.reason)).toEqual([expect.stringMatching(/^genesis/), expect.stringMatching(new RegExp(`^local training, ${STEPS} steps`))])
    const current = new Set((await getJson<{ parts: Array<{ block: string }> }>(`${summary.explorer}/api/model`)).parts.map((p) => p.block.slice(0, 16)))

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
    try {
      for (const [name, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]] as const) {
        const page = await browser.newPage({ viewport })
        await page.goto(summary.explorer)
        await page.getByTestId("prompt").fill("The river")
        await page.getByTestId("max-tokens").fill("24")
        await page.getByTestId("chat-send").click()
        await page.getByTestId("chat-status").getByText(/^answered: 24 byte\(s\), request chat-/).waitFor({ timeout: 60_000 })
        // Every byte is shown: the characters and escaped invalid bytes cover the answer's bytes, in order.
        const ranges = await page.locator('[data-testid="answer"] span').evaluateAll((spans) => spans.map((s) => s.getAttribute("data-tokens")!))
        expect(ranges.flatMap((r) => { const [a, b] = r.split("-").map(Number); return Array.from({ length: b! - a! + 1 }, (_, i) => a! + i) })).toEqual([...Array(24).keys()])
        await page.locator('[data-testid="answer"] span').first().click()
        const rows = await page.locator('[data-testid="attribution"] tr').evaluateAll((trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent!)))
        // The first byte, per layer its top-2 experts: each on the node that ran it, with the model's current block.
        expect(rows).toHaveLength(4 * 2)
        for (const [, , , , block, node] of rows) {
          expect(node).toBe("local-1")
          expect(current.has(block!.replace("…", ""))).toBe(true)
        }
        await page.screenshot({ path: path.join(SHOTS, `explorer-chat-${name}.png`), fullPage: true })
        expect(await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth")).toBeLessThanOrEqual(0)
      }
    } finally {
      await browser.close()
    }
    await stop(first.child)

    const second = start(["up", "--json", "--data", data, "--nodes", "0", "--train-steps", String(STEPS)])
    expect((await summaryOf(second.out)).training).toBeNull()
    await stop(second.child)
  }, 240_000)
})
