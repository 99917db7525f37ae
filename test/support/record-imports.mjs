// Preloaded with `node --import` by the CLI start tests: records the URL of every module the process
// imports (one a line) in the file named by BLYAN_RECORD_IMPORTS. Plain JavaScript, so that it
// adds no loader of its own to the CLI it watches.
import { register } from "node:module"

register("./record-imports-hooks.mjs", import.meta.url, { data: { file: process.env.BLYAN_RECORD_IMPORTS } })
