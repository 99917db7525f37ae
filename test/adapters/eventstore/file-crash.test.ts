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
import { segmentFiles } from "../../support/segment-files.ts"

const repo = path.resolve(__dirname, "../../..")
const script = path.join(repo, "test/support/crash-writer.ts")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-file-crash-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const reopen = (dir: string, segmentBytes?: number) => Effect.scoped(Effect.flatMap(makeFileEventStore(dir, { segmentBytes }), (s) => logOf(s)))

/**
 * Run the writer child until it has acknowledged at least `acks` envelopes, then SIGKILL it.
 * Returns every "<seq> <hash>" it acknowledged, including lines still in the pipe at its death.
 */
const writeThenKill = (dir: string, concurrency: number, acks: number, segmentBytes?: number) =>
  new Promise<Map<number, string>>((resolve, reject) => {
    const args = ["--import", "tsx", script, "append", dir, String(concurrency), ...(segmentBytes === undefined ? [] : [String(segmentBytes)])]
    const child = spawn(process.execPath, args, { cwd: repo, stdio: "pipe" })
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

/**
 * Kill the writer `runs` times at random points, each run recovering the log the one before left;
 * after each, every append ever acknowledged is there and the chain holds.
 */
const crashRuns = (runs: number, segmentBytes: fc.Arbitrary<number | undefined>) =>
  Effect.gen(function* () {
    const dir = fs.mkdtempSync(path.join(root, "log-"))
    const everAcked = new Map<number, string>()
    // fast-check's async property takes Promises: each case's reopen runs on this test's runtime.
    const runtime = yield* Effect.runtime<never>()
    yield* Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.integer({ min: 5, max: 60 }), fc.constantFrom(1, 4, 32), segmentBytes, async (acks, concurrency, bytes) => {
          const acked = await writeThenKill(dir, concurrency, acks, bytes)
          for (const [seq, hash] of acked) everAcked.set(seq, hash)
          const log = await Runtime.runPromise(runtime)(reopen(dir, bytes))
          expect(chainOk(log)).toBe(true)
          for (const [seq, hash] of everAcked) expect({ seq, hash: log[seq]?.hash }).toEqual({ seq, hash })
        }),
        { numRuns: runs }
      )
    )
    expect(everAcked.size).toBeGreaterThan(runs * 5)
    return dir
  })

describe("file event store: crash safety", () => {
  // Child processes and real kills: on the live clock.
  it.live("every acknowledged append survives kill -9 of its writer, and the store reopens (property)", () =>
    Effect.asVoid(crashRuns(8, fc.constant(undefined)))
  )

  it.live("with segments rolled every append or few, a kill at any point, rolls included, loses no acknowledged append (property)", () =>
    Effect.gen(function* () {
      const dir = yield* crashRuns(8, fc.integer({ min: 1, max: 1500 }))
      // The kills left a log of many segments, each the truth for its index.
      expect(segmentFiles(dir).length).toBeGreaterThan(8)
    })
  )
})
