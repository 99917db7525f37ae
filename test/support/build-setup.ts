import { spawnSync } from "node:child_process"
import * as path from "node:path"

/**
 * Vitest's global setup: build dist/ before any test runs. The CLI tests spawn bin/blyan.mjs, which
 * runs the bundle, so they test what users run and never a build older than the sources. Sources
 * that do not build leave no bundle (scripts/build.mjs removes its entries): the CLI tests then fail
 * saying the CLI is not built, below esbuild's errors, while the tests that do not need it still run.
 */
export default function buildCli() {
  const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../scripts/build.mjs")], { stdio: "inherit" })
  if (r.status !== 0) console.error("build-setup: the CLI does not build (errors above); every test that runs it will fail")
}
