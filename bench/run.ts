// Runs every benchmark in turn; each prints its figures and writes bench/results/<name>.json.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import * as path from "node:path"

const benches = ["ledger", "ledger-proofs", "segments", "checkpoints", "import", "partition", "model", "inference", "network", "imported-network", "pol", "explorer", "pipeline", "cli"]
const only = process.argv.slice(2)
let failed = 0
for (const name of benches.filter((b) => only.length === 0 || only.includes(b))) {
  const file = path.join(import.meta.dirname, `${name}.ts`)
  if (!existsSync(file)) continue
  console.log(`\n== bench/${name}`)
  const r = spawnSync(process.execPath, ["--import", "tsx", file], { stdio: "inherit" })
  if (r.status !== 0) failed++
}
process.exitCode = failed === 0 ? 0 : 1
