// Runs a TypeScript worker entry from source (vitest, tsx): Node 20 does not apply the hooks of an
// `--import tsx` in a worker's execArgv to the worker's own entry, so the worker registers tsx
// itself, then imports the entry named in its workerData.
import { workerData } from "node:worker_threads"
import { register } from "tsx/esm/api"

register()
await import(workerData.entry)
