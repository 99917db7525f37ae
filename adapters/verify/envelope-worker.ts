import { parentPort } from "node:worker_threads"
import { firstOwnFailure, type OwnFailure, type RecordJob } from "./record-check.ts"
import { announceReady, type WorkerReply, type WorkerRequest } from "./worker-pool.ts"

/** A verification worker (see envelope-pool.ts): checks each job's records on their own. */
const port = parentPort!
port.on("message", ({ id, job }: WorkerRequest<RecordJob>) => {
  let reply: WorkerReply<OwnFailure | null>
  try {
    reply = { id, result: firstOwnFailure(job) ?? null }
  } catch (e) {
    reply = { id, error: e instanceof Error ? e.message : String(e) }
  }
  port.postMessage(reply)
})
announceReady()
