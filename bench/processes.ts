/** `blyan` processes for a bench: a directory and home of its own, commands run to completion, and long-running ones stopped at the end. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const bin = path.resolve(import.meta.dirname, "../bin/blyan.mjs")

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const benchProcesses = (name: string, settings: Record<string, string>) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `blyan-bench-${name}-`))
  const env = { ...process.env, BLYAN_HOME: path.join(root, "home"), ...settings }
  const children: ChildProcess[] = []
  /** A command run to completion: its stdout, or an error with its stderr. */
  const blyan = (args: ReadonlyArray<string>) => {
    const r = spawnSync(process.execPath, [bin, ...args], { env, encoding: "utf8" })
    if (r.status !== 0) throw new Error(`blyan ${args.join(" ")}: ${r.stderr}`)
    return r.stdout
  }
  /** A long-running command, its stderr passed through. */
  const start = (args: ReadonlyArray<string>) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ["ignore", "ignore", "inherit"] })
    children.push(child)
    return child
  }
  /** Wait until every node the ledger in `data` lists has announced its blocks, `count` of them. */
  const nodesServing = async (data: string, count: number) => {
    for (let i = 0; ; i++) {
      const listed = JSON.parse(blyan(["nodes", "--json", "--data", data])) as ReadonlyArray<{ status: string; blocks: ReadonlyArray<string> }>
      const serving = listed.filter((n) => n.status === "active" && n.blocks.length > 0)
      if (serving.length === count) return
      if (i > 600) throw new Error("the nodes did not come up")
      await sleep(100)
    }
  }
  /** Stop what was started (the ledger's holder, started first, last, so that it records the nodes' retirement). */
  const stopAll = async () => {
    for (const c of children.slice(1)) c.kill("SIGTERM")
    await sleep(1500)
    children[0]?.kill("SIGTERM")
    await sleep(1000)
    children.length = 0
  }
  return { root, env, children, blyan, start, nodesServing, stopAll }
}
