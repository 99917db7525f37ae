import { spawnSync } from "node:child_process"
import { Worker } from "node:worker_threads"
import { describe, expect, it } from "@effect/vitest"
import { WorkerPool } from "../../../adapters/verify/worker-pool.ts"

const echoPool = (size = 1) =>
  new WorkerPool<number | string, number>({ name: "echo", size, start: (workerData) => new Worker(new URL("./fixtures/echo-worker.mjs", import.meta.url), { workerData }) })

describe("the worker pool", () => {
  it("is ready once a worker has loaded, and starts its workers when asked", async () => {
    const pool = echoPool(2)
    expect(pool.ready()).toBe(false)
    while (!pool.ready()) await new Promise((r) => setTimeout(r, 10))
    expect(await pool.run(4)).toBe(8)
  })

  it("runs jobs on its workers and answers each with its own result", async () => {
    const pool = echoPool(2)
    expect(await Promise.all([1, 2, 3, 4, 5].map((n) => pool.run(n)))).toEqual([2, 4, 6, 8, 10])
  })

  it("a worker that exits fails every job it held, and the next job gets a fresh worker", async () => {
    const pool = echoPool()
    const held = pool.run("hold")
    const exit = pool.run("exit")
    await expect(exit).rejects.toThrow(/echo worker stopped \(exit code 3\)/)
    await expect(held).rejects.toThrow(/exit code 3/)
    expect(await pool.run(21)).toBe(42)
  })

  it("an uncaught error in a worker fails its jobs, naming the error", async () => {
    const pool = echoPool()
    await expect(pool.run("throw")).rejects.toThrow(/stopped \(exit code 1: boom\)/)
    expect(await pool.run(1)).toBe(2)
  })

  it("a job the worker refuses fails alone; the worker goes on", async () => {
    const pool = echoPool()
    await expect(pool.run("refuse")).rejects.toThrow(/echo worker: refused/)
    expect(await pool.run(5)).toBe(10)
  })

  it("workers keep a process alive while they work, and not once they are idle", () => {
    const script = new URL("./fixtures/verify-and-exit.ts", import.meta.url).pathname
    // A worker that held the process open would run into the timeout; one that let it go mid-job
    // would let it end before it prints.
    const r = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 120_000 })
    expect({ status: r.status, signal: r.signal, stdout: r.stdout.trim() }).toEqual({ status: 0, signal: null, stdout: "verified 2001" })
  })
})
