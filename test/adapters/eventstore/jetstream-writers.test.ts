import { spawn } from "node:child_process"
import * as path from "node:path"
import { Effect, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeJetStreamEventStore } from "../../../adapters/eventstore/jetstream.ts"
import { makeReplayer } from "../../../domain/ledger/audit.ts"
import { genesisEvent } from "../../support/events.ts"
import { deleteStreamAfter, testConnection, testNatsUrl, uniqueName } from "../../support/jetstream-fixtures.ts"
import { logOf } from "../../support/log.ts"

const writerScript = path.resolve(__dirname, "../../support/jetstream-writer.ts")
const WAIT_MS = 240_000

type Run = { readonly code: number | null; readonly lines: string[]; readonly stderr: string }

/**
 * Start the writer children, let them all go once every one is ready (so that they append at the
 * same time), and wait (bounded) for them to finish; what each printed after "ready".
 */
const runWriters = (n: number, ...args: string[]) =>
  Effect.promise(async (): Promise<Run[]> => {
    const children = Array.from({ length: n }, () =>
      spawn(process.execPath, ["--import", "tsx", writerScript, ...args], { cwd: path.resolve(__dirname, "../../.."), stdio: "pipe" })
    )
    const timer = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), WAIT_MS)
    const runs = children.map((child) => {
      let stdout = ""
      let stderr = ""
      const ready = new Promise<void>((resolve) =>
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString()
          if (stdout.startsWith("ready\n")) resolve()
        })
      )
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<Run>((resolve) => child.on("exit", (code) => resolve({ code, lines: stdout.split("\n").slice(1, -1), stderr })))
      return { child, ready: Promise.race([ready, exited]), exited }
    })
    await Promise.all(runs.map((r) => r.ready))
    for (const r of runs) r.child.stdin.write("go\n")
    const done = await Promise.all(runs.map((r) => r.exited))
    clearTimeout(timer)
    return done
  })

describe("jetstream event store: writers in several processes", () => {
  // Live: child processes and a real server.
  it.scopedLive("two processes append concurrently to one ledger: it audits green, with every acknowledged event exactly once", () =>
    Effect.gen(function* () {
      const conn = yield* testConnection()
      const stream = uniqueName("T_LEDGER")
      yield* deleteStreamAfter(conn, stream)
      const store = yield* makeJetStreamEventStore(conn, { stream, replicas: 1 })
      yield* store.append("chain-A", [genesisEvent()], "no_stream")

      const appenders = 8
      const appends = 25
      const runs = yield* runWriters(2, testNatsUrl, stream, String(appenders), String(appends))
      for (const r of runs) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" })

      const acked = runs.flatMap((r) => r.lines).map((line) => line.split(" "))
      // They did write at the same time: the seqs of each lie on both sides of some seq of the other.
      const [a, b] = runs.map((r) => r.lines.map((line) => Number(line.split(" ")[0])))
      expect(b!.some((seq) => seq > Math.min(...a!) && seq < Math.max(...a!))).toBe(true)
      expect(a!.some((seq) => seq > Math.min(...b!) && seq < Math.max(...b!))).toBe(true)
      const log = yield* logOf(store)
      // Every append of both processes was acknowledged (one in five carries two events), each at its own seq.
      expect(acked.length).toBe(2 * appenders * (appends + appends / 5))
      expect(new Set(acked.map(([seq]) => seq)).size).toBe(acked.length)
      expect(log.length).toBe(1 + acked.length)
      for (const [seq, hash] of acked) expect(log[Number(seq)]!.hash).toBe(hash)

      const replayer = makeReplayer()
      yield* store.readAll(0).pipe(Stream.runForEach((env) => Effect.sync(() => replayer.step(env))))
      const audit = replayer.result()
      expect(audit.firstBad).toBeUndefined()
      expect(audit.events).toBe(log.length)

      // The stream both processes raced on holds each of their appends once, at consecutive revisions.
      const shared = yield* store.read("node-shared")
      expect(shared.length).toBe(2 * appenders * (appends / 5))
      expect(new Set(shared.map((e) => (e.data as { node: string }).node)).size).toBe(shared.length)
    })
  )
})
