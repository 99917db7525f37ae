import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Runtime } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { makeFileEventStore } from "../../../adapters/eventstore/file.ts"
import { type Envelope, verifyChain as verifyChainOf } from "../../../domain/ledger/envelope.ts"
import { logOf } from "../../support/log.ts"

const repo = path.resolve(__dirname, "../../..")
const script = path.join(repo, "test/support/crash-writer.ts")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-file-crash-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const reopen = (dir: string) => Effect.scoped(Effect.flatMap(makeFileEventStore(dir), (s) => logOf(s)))

/**
 * Run the writer child until it has acknowledged at least `acks` envelopes, then SIGKILL it.
 * Returns every "<seq> <hash>" it acknowledged, including lines still in the pipe at its death.
 */
const writeThenKill = (dir: string, concurrency: number, acks: number) =>
  new Promise<Map<number, string>>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, "append", dir, String(concurrency)], { cwd: repo, stdio: "pipe" })
    const acked = new Map<number, string>()
    let pending = ""
    let stderr = ""
    let killed = false
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdout.on("data", (d: Buffer) => {
      pending += d.toString()
      const lines = pending.split("\n")
      pending = lines.pop()!
      for (const line of lines) {
        const [seq, hash] = line.split(" ")
        acked.set(Number(seq), hash!)
      }
      if (!killed && acked.size >= acks) {
        killed = true
        child.kill("SIGKILL")
      }
    })
    child.on("close", (code, signal) => {
      if (signal === "SIGKILL" && killed) resolve(acked)
      else reject(new Error(`writer ended by itself (code ${code}, signal ${signal}): ${stderr}`))
    })
  })

const chainOk = (log: ReadonlyArray<Envelope>): boolean => Either.isRight(verifyChainOf(log))

describe("file event store: crash safety", () => {
  // Child processes and real kills: on the live clock.
  it.live("every acknowledged append survives kill -9 of its writer, and the store reopens (property)", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(root, "log-"))
      // Across runs too: each crash recovers the previous one's log and writes on after it.
      const everAcked = new Map<number, string>()
      // fast-check's async property takes Promises: each case's reopen runs on this test's runtime.
      const runtime = yield* Effect.runtime<never>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 5, max: 60 }), fc.constantFrom(1, 4, 32), async (acks, concurrency) => {
            const acked = await writeThenKill(dir, concurrency, acks)
            for (const [seq, hash] of acked) everAcked.set(seq, hash)
            const log = await Runtime.runPromise(runtime)(reopen(dir))
            expect(chainOk(log)).toBe(true)
            for (const [seq, hash] of everAcked) expect({ seq, hash: log[seq]?.hash }).toEqual({ seq, hash })
          }),
          { numRuns: 8 }
        )
      )
      expect(everAcked.size).toBeGreaterThan(8 * 5)
    })
  )
})
