import { workerData, type Worker } from "node:worker_threads"

/**
 * A fixed number of worker threads running one entry module, started on first need. A worker
 * holds the process open only while it has work: idle workers are unref'd, so a command that is
 * done exits even though the pool is still there. A worker that dies (an uncaught error, a
 * crash, process.exit) fails the jobs it held instead of leaving them waiting, and is replaced
 * on the next need.
 *
 * The entry module calls `announceReady()` once it has loaded, then answers each `{ id, job }`
 * message with `{ id, result }` or `{ id, error }`.
 */
export type WorkerPoolOptions = {
  /** What the pool's errors call it. */
  readonly name: string
  readonly size: number
  /** Start one worker, handing it `workerData` (which carries its readiness flag). */
  readonly start: (workerData: WorkerData) => Worker
}

/**
 * What a pool's worker receives: a flag it sets once loaded. Shared memory rather than a message,
 * so that a thread busy verifying inline sees it without returning to its event loop.
 */
export type WorkerData = { readonly ready: Int32Array }

/** Called by a worker's entry module once it has loaded: the pool may send it jobs from now on. */
export const announceReady = (): void => {
  Atomics.store((workerData as WorkerData).ready, 0, 1)
}

export type WorkerRequest<J> = { readonly id: number; readonly job: J }
export type WorkerReply<R> = { readonly id: number; readonly result: R } | { readonly id: number; readonly error: string }

type Pending = { readonly resolve: (r: unknown) => void; readonly reject: (e: Error) => void }
type Slot = { readonly worker: Worker; readonly pending: Map<number, Pending>; readonly ready: Int32Array }

const isReady = (s: Slot) => Atomics.load(s.ready, 0) === 1

export class WorkerPool<J, R> {
  private readonly slots: Array<Slot | undefined>
  private nextId = 0

  constructor(private readonly options: WorkerPoolOptions) {
    this.slots = Array.from({ length: Math.max(1, options.size) }, () => undefined)
  }

  get size(): number {
    return this.slots.length
  }

  /**
   * Whether a worker has loaded and can take jobs now; starts those not started yet. A caller
   * that cannot wait for workers to load does the work itself until then.
   */
  ready(): boolean {
    let any = false
    for (let i = 0; i < this.slots.length; i++) any = isReady((this.slots[i] ??= this.start(i))) || any
    return any
  }

  /** Run `job` on the least busy worker, loaded ones first; `transfer` lists buffers moved to it rather than copied. */
  run(job: J, transfer: ReadonlyArray<ArrayBuffer> = []): Promise<R> {
    const slot = this.leastBusy()
    const id = this.nextId++
    return new Promise<R>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (r: unknown) => void, reject })
      slot.worker.ref()
      try {
        slot.worker.postMessage({ id, job } satisfies WorkerRequest<J>, [...transfer])
      } catch (e) {
        this.settle(slot, id)
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    })
  }

  private leastBusy(): Slot {
    let best: Slot | undefined
    let bestReady = false
    for (let i = 0; i < this.slots.length; i++) {
      const s = (this.slots[i] ??= this.start(i))
      const ready = isReady(s)
      if (best === undefined || (ready && !bestReady) || (ready === bestReady && s.pending.size < best.pending.size)) {
        best = s
        bestReady = ready
      }
    }
    return best!
  }

  private start(i: number): Slot {
    const ready = new Int32Array(new SharedArrayBuffer(4))
    const worker = this.options.start({ ready })
    const slot: Slot = { worker, pending: new Map(), ready }
    let failure: string | undefined
    worker.on("message", (reply: WorkerReply<unknown>) => {
      const p = this.settle(slot, reply.id)
      if (p === undefined) return
      if ("error" in reply) p.reject(new Error(`${this.options.name} worker: ${reply.error}`))
      else p.resolve(reply.result)
    })
    worker.on("messageerror", (e) => {
      // The reply is lost, so its job could never settle: stop the worker, which fails them all.
      failure ??= `cannot read its reply: ${e.message}`
      void worker.terminate()
    })
    worker.on("error", (e) => (failure ??= e.message))
    worker.on("exit", (code) => {
      if (this.slots[i] === slot) this.slots[i] = undefined
      const reason = new Error(`${this.options.name} worker stopped (exit code ${code}${failure ? `: ${failure}` : ""})`)
      for (const p of slot.pending.values()) p.reject(reason)
      slot.pending.clear()
    })
    // After the listeners: adding a "message" listener refs the worker's port again.
    worker.unref()
    return slot
  }

  /** Take a job off its worker's books; an idle worker stops holding the process open. */
  private settle(slot: Slot, id: number): Pending | undefined {
    const p = slot.pending.get(id)
    slot.pending.delete(id)
    if (slot.pending.size === 0) slot.worker.unref()
    return p
  }
}
