import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

const repo = path.resolve(import.meta.dirname, "../..")
const recorder = path.join(repo, "test", "support", "record-imports.mjs")

/** Run the built CLI as users do, returning its exit code and every module URL it imported. */
const importsOf = (args: ReadonlyArray<string>) =>
  new Promise<{ readonly code: number; readonly modules: ReadonlyArray<string> }>((resolve, reject) => {
    const record = path.join(tempDir("blyan-imports-"), "modules.txt")
    fs.writeFileSync(record, "")
    const child = spawn(process.execPath, ["--import", recorder, path.join(repo, "bin", "blyan.mjs"), ...args], {
      env: { ...process.env, BLYAN_RECORD_IMPORTS: record },
      stdio: ["ignore", "ignore", "inherit"]
    })
    child.on("error", reject)
    child.on("close", (code) => resolve({ code: code ?? -1, modules: fs.readFileSync(record, "utf8").split("\n").filter((l) => l.length > 0) }))
  })

/** Packages only some commands need: the model's runtime and graph format, and the network stores' clients. */
const heavy = ["onnxruntime-node", "onnx-proto", "@eventstore/db-client", "nats"]
const heavyIn = (modules: ReadonlyArray<string>) => heavy.filter((p) => modules.some((m) => m.includes(`/node_modules/${p}/`)))

describe("the CLI's start", () => {
  const data = tempDir()
  const ready = blyan(["init", "--data", data])

  it("runs the bundle in dist/, not the TypeScript sources", async () => {
    expect((await ready).code).toBe(0)
    const { code, modules } = await importsOf(["--help"])
    expect(code).toBe(0)
    expect(modules).toContain(new URL("../../dist/main.js", import.meta.url).href)
    expect(modules.filter((m) => m.endsWith(".ts"))).toEqual([])
  })

  it("--help and events load neither the model's runtime nor any network store's client; the commands that need them do", async () => {
    expect((await ready).code).toBe(0)
    for (const args of [["--help"], ["events", "--json", "--data", data]]) {
      const { code, modules } = await importsOf(args)
      expect(code, args.join(" ")).toBe(0)
      expect(heavyIn(modules), args.join(" ")).toEqual([])
    }
    // The same record shows the lazy loads happen where they are needed, so the check above can fail.
    const onnx = await importsOf(["export", "--onnx", path.join(tempDir(), "graphs"), "--data", data])
    expect(onnx.code).toBe(0)
    expect(heavyIn(onnx.modules)).toContain("onnx-proto")
  })

  it("without a build, says how to make one and exits 1", async () => {
    // A copy of the launcher beside no dist/: what a checkout looks like before `npm ci`.
    const bare = tempDir()
    fs.mkdirSync(path.join(bare, "bin"))
    fs.copyFileSync(path.join(repo, "bin", "blyan.mjs"), path.join(bare, "bin", "blyan.mjs"))
    const r = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(bare, "bin", "blyan.mjs"), "--help"], { stdio: ["ignore", "ignore", "pipe"] })
      let stderr = ""
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
      child.on("error", reject)
      child.on("close", (code) => resolve({ code: code ?? -1, stderr }))
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^blyan: the CLI is not built \(no dist\/main\.js\): run `npm ci` or `npm run build` in .+\n$/)
  })
})
