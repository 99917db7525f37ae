import { parentPort } from "node:worker_threads"
import { checkRecords, takeJob, type JobVerdict, type RecordJob } from "./record-check.ts"
import { announceReady, type WorkerReply, type WorkerRequest } from "./worker-pool.ts"

/** A verification worker (see envelope-pool.ts): checks each job's records on their own, unless the thread that handed it over took it back (null). */
const port = parentPort!
port.on("message", ({ id, job }: WorkerRequest<RecordJob>) => {
  let reply: WorkerReply<JobVerdict | null>
  try {
    reply = { id, result: takeJob(job, "worker") ? checkRecords(job) : null }
  } catch (e) {
    reply = { id, error: e instanceof Error ? e.message : String(e) }
  }
  port.postMessage(reply)
})
announceReady()
