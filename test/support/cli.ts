import { spawn } from "node:child_process"
import * as path from "node:path"

const bin = path.resolve(import.meta.dirname, "../../bin/blyan.mjs")

export type CliResult = { readonly code: number; readonly stdout: string; readonly stderr: string }

/**
 * Run the real `blyan` executable as a user would. Asynchronous on purpose: a blocking spawn would
 * stall the test worker's event loop and with it the runner's heartbeat.
 */
export const blyan = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
