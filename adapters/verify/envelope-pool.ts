import * as os from "node:os"
import { Worker } from "node:worker_threads"
import { packRecords, type OwnFailure, type RecordJob } from "./record-check.ts"
import { WorkerPool, type WorkerData } from "./worker-pool.ts"

/**
 * A verification worker. From the bundle it is `envelope-worker.js`, which the build puts beside
 * every chunk; from source (vitest, tsx) it is the TypeScript entry beside this module, started
 * through `ts-worker.mjs`. A job's garbage is short-lived: a small young generation keeps each
 * worker's resident memory down without slowing it.
 */
const startWorker = (workerData: WorkerData): Worker => {
  const resourceLimits = { maxYoungGenerationSizeMb: 8 }
  return import.meta.url.endsWith(".ts")
    ? new Worker(new URL("./ts-worker.mjs", import.meta.url), {
        workerData: { ...workerData, entry: new URL("./envelope-worker.ts", import.meta.url).href },
        resourceLimits
      })
    : new Worker(new URL("./envelope-worker.js", import.meta.url), { workerData, resourceLimits })
}

/** The process's envelope verification workers: min(cores, 4), started on first need. */
const pool = new WorkerPool<RecordJob, OwnFailure | null>({
  name: "envelope verification",
  size: Math.min(os.availableParallelism(), 4),
  start: startWorker
})

/** Whether the workers can take jobs now (they are started if they were not): until then, verify inline. */
export const verificationPoolReady = (): boolean => pool.ready()

/** Jobs of at least this many bytes, so that handing one over costs little beside checking it. */
const MIN_JOB_BYTES = 32 << 10

/**
 * Check each record of a run, starting at `firstSeq`, for what needs no other record, spread over
 * the workers; the first failure of the run (by position), if any. The jobs are posted before
 * this returns, so the caller can do its own share meanwhile.
 */
export const firstOwnFailureOnPool = async (payloads: ReadonlyArray<Uint8Array>, firstSeq: number): Promise<OwnFailure | undefined> => {
  let total = 0
  for (const p of payloads) total += p.length
  // A few jobs per worker, so one that is slower to start or is preempted does not hold the rest.
  const jobBytes = Math.max(MIN_JOB_BYTES, Math.ceil(total / (pool.size * 4)))
  const runs: Array<Promise<OwnFailure | null>> = []
  const starts: number[] = []
  for (let i = 0; i < payloads.length; ) {
    let j = i
    for (let bytes = 0; j < payloads.length && bytes < jobBytes; j++) bytes += payloads[j]!.length
    const job = packRecords(payloads.slice(i, j), firstSeq + i)
    starts.push(i)
    runs.push(pool.run(job, [job.bytes.buffer as ArrayBuffer, job.starts.buffer as ArrayBuffer, job.ends.buffer as ArrayBuffer]))
    i = j
  }
  const results = await Promise.all(runs)
  for (let k = 0; k < results.length; k++) {
    const f = results[k]
    if (f) return { index: starts[k]! + f.index, reason: f.reason }
  }
  return undefined
}
