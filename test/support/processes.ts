import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Scope } from "effect"
import { afterAll } from "vitest"

const bin = path.resolve(import.meta.dirname, "../../bin/blyan.mjs")

/**
 * Long-running `blyan` processes for one test file: a directory of its own (`root`, its home in
 * `root/home`), a scope for what the test opens, and every process and the directory cleaned up
 * after the file's tests.
 */
/** Timings for tests of pipeline training on node processes: quick heartbeats, short pipeline deadlines. */
export const pipelineNetworkSettings = {
  BLYAN_REQUEST_TIMEOUT_MS: "5000",
  BLYAN_HEARTBEAT_MS: "500",
  BLYAN_PIPELINE_TIMEOUT_S: "2",
  BLYAN_PIPELINE_STEP_TIMEOUT_S: "20"
}

export const blyanProcesses = (name: string, settings: Record<string, string>) => {
  const scope = Effect.runSync(Scope.make())
  const children: ChildProcess[] = []
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `blyan-${name}-`))
  const env = { ...process.env, BLYAN_HOME: path.join(root, "home"), ...settings }
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL")
    await Effect.runPromise(Scope.close(scope, Exit.void))
    fs.rmSync(root, { recursive: true, force: true })
  })
  /** A `blyan` process, its stdout and stderr collected together. */
  const start = (args: ReadonlyArray<string>) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    children.push(child)
    const out = { text: "" }
    child.stdout.on("data", (d) => (out.text += d))
    child.stderr.on("data", (d) => (out.text += d))
    return { child, out }
  }
  return { scope, root, env, start }
}

/** Wait, for at most a minute, until `ok`. */
export const eventually = async (ok: () => boolean, what: string) => {
  for (let i = 0; i < 1200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50))
  if (!ok()) throw new Error(`timed out waiting for ${what}`)
}

export const stopped = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null

/** Stop `c` with SIGTERM and wait until it is gone. */
export const stop = async (c: ChildProcess) => {
  c.kill("SIGTERM")
  await eventually(() => stopped(c), "the process to stop")
}
