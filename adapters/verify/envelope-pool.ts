import * as os from "node:os"
import { Worker } from "node:worker_threads"
import { checkRecords, packRecords, takeJob, type JobVerdict, type RecordJob } from "./record-check.ts"
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

/**
 * The process's envelope verification workers, started on first need: one per core but the one
 * the reading thread keeps busy (it parses and links every record, and verifies batches itself
 * while the workers are behind), at least one and at most four.
 */
const pool = new WorkerPool<RecordJob, JobVerdict | null>({
  name: "envelope verification",
  size: Math.max(1, Math.min(os.availableParallelism() - 1, 4)),
  start: startWorker
})

/** Whether the workers can take jobs now (they are started if they were not): until then, verify inline. */
export const verificationPoolReady = (): boolean => pool.ready()

/**
 * Jobs of at least this many bytes, so that handing one over costs little beside checking it: a
 * reader that keeps several batches in flight hands each worker one job per batch.
 */
const MIN_JOB_BYTES = 256 << 10

/**
 * The buffers of a job that move to its worker rather than being copied: none of one this thread
 * may take back (whose records lie in shared memory), all of any other.
 */
const moved = (job: RecordJob): ArrayBuffer[] =>
  job.claim !== undefined
    ? []
    : [job.bytes, job.starts, job.ends, ...(job.checksums === undefined ? [] : [job.checksums])].map((a) => a.buffer as ArrayBuffer)

/** A run of records handed to the workers in jobs, each numbered from the run's first record. */
export type PooledRun = ReadonlyArray<{ readonly start: number; readonly job: RecordJob; readonly reply: Promise<JobVerdict | null> }>

/**
 * Hand a run of records, starting at `firstSeq`, to the workers, to check each for what needs no
 * other record (with `checksums`, each payload's crc32 too). The jobs are posted before this
 * returns, so the caller can do its own share meanwhile; `runVerdict` collects them.
 */
export const handToPool = (payloads: ReadonlyArray<Uint8Array>, firstSeq: number, checksums?: ReadonlyArray<number>): PooledRun => {
  let total = 0
  for (const p of payloads) total += p.length
  // A few jobs per worker, so one that is slower to start or is preempted does not hold the rest.
  const jobBytes = Math.max(MIN_JOB_BYTES, Math.ceil(total / (pool.size * 4)))
  const run: Array<PooledRun[number]> = []
  for (let i = 0; i < payloads.length; ) {
    let j = i
    for (let bytes = 0; j < payloads.length && bytes < jobBytes; j++) bytes += payloads[j]!.length
    const job = packRecords(payloads.slice(i, j), firstSeq + i, checksums && Uint32Array.from(checksums.slice(i, j)))
    const reply = pool.run(job, moved(job))
    // Awaited by runVerdict unless this thread takes the job back; a failure must not count as unhandled meanwhile.
    reply.catch(() => undefined)
    run.push({ start: i, job, reply })
    i = j
  }
  return run
}

/**
 * The verdict of a run handed to the pool, its failure and irregular records numbered from the
 * start of the run. The jobs no worker has started yet are taken back and checked on this thread:
 * a reader that has caught up with the workers shares their work instead of waiting for it.
 */
export const runVerdict = async (run: PooledRun): Promise<JobVerdict> => {
  const verdicts = run.map(({ job }) => (takeJob(job, "reader") ? checkRecords(job) : undefined))
  const irregular: number[] = []
  for (let k = 0; k < run.length; k++) {
    const { start, reply } = run[k]!
    const verdict = verdicts[k] ?? (await reply)
    if (verdict === null) throw new Error("a job taken by this thread was checked by a worker as well")
    for (const i of verdict.irregular) irregular.push(start + i)
    if (verdict.failure) return { failure: { ...verdict.failure, index: start + verdict.failure.index }, irregular }
  }
  return { failure: undefined, irregular }
}
