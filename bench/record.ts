import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** The machine a bench ran on, as its results record it. */
export const machineInfo = () => {
  const cpus = os.cpus()
  return { cpu: cpus[0]?.model.trim() ?? "unknown", cpus: cpus.length, platform: `${os.platform()} ${os.release()}`, node: process.version }
}

/** Write a bench's results to bench/results/<name>.json. */
export const writeResults = (name: string, result: object) => {
  const dir = path.join(import.meta.dirname, "results")
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(result, null, 2) + "\n")
  console.log(`wrote ${path.join("bench", "results", `${name}.json`)}`)
}
