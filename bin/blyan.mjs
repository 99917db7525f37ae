#!/usr/bin/env node
// The CLI runs the bundle in dist/, built from the TypeScript sources by `npm ci` (its `prepare`
// script) or `npm run build`: no compiler at run time, and only what the command uses is loaded.
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const main = new URL("../dist/main.js", import.meta.url)
if (!existsSync(main)) {
  process.stderr.write(`blyan: the CLI is not built (no dist/main.js): run \`npm ci\` or \`npm run build\` in ${fileURLToPath(new URL("..", import.meta.url))}\n`)
  process.exit(1)
}
await import(main.href)
