import { spawnSync } from "node:child_process"
import * as path from "node:path"

const bin = path.resolve(import.meta.dirname, "../../bin/blyan.mjs")

export type CliResult = { readonly code: number; readonly stdout: string; readonly stderr: string }

/** Run the real `blyan` executable as a user would. */
export const blyan = (args: ReadonlyArray<string>, env: Record<string, string> = {}): CliResult => {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}
