/**
 * A child process for the writer-lock tests (run with `node --import tsx`).
 *
 *   contend <dataDir> <attempts>  print "ready"; for every "go" line on stdin, try `attempts` times
 *                                 to take the lock; while holding it, create <dataDir>/HELD
 *                                 exclusively (finding it already there is an overlap), append
 *                                 "+pid" and "-pid" around a short hold to <dataDir>/journal, then
 *                                 release; print "done <held> <refused> <overlaps>"; exit on EOF
 *   hold <dataDir>                take the lock, print "ready", keep it until killed
 *   probe <dataDir>               take the lock and release it, exit 0; if refused, print the
 *                                 error to stderr and exit 3
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { Effect, Logger } from "effect"
import { acquireWriterLock } from "../../adapters/eventstore/file-lock.ts"

const [mode, dataDir, attemptsArg] = process.argv.slice(2)
if (!mode || !dataDir) {
  process.stderr.write("usage: lock-contender contend|hold|probe <dataDir> [attempts]\n")
  process.exit(2)
}
const lockDir = path.join(dataDir, "events")
const say = (line: string) => process.stdout.write(line + "\n")
// stdout carries the protocol only: logs (such as a warning about a LOCK left by a crash) go to stderr.
const toStderr = Logger.map(Logger.logfmtLogger, (line) => void process.stderr.write(line + "\n"))
const run = <A, E>(eff: Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.provide(eff, Logger.replace(Logger.defaultLogger, toStderr)))
const fail = (e: unknown) => {
  process.stderr.write(`${(e as Error).message ?? String(e)}\n`)
  process.exit(3)
}

/** One try: "held" (and whether another holder was seen meanwhile) or "refused". */
const attempt = Effect.scoped(
  Effect.gen(function* () {
    yield* acquireWriterLock(dataDir, lockDir)
    const sentinel = path.join(dataDir, "HELD")
    const journal = path.join(dataDir, "journal")
    let overlap = false
    try {
      fs.closeSync(fs.openSync(sentinel, "wx"))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      overlap = true
    }
    fs.appendFileSync(journal, `+${process.pid}\n`)
    yield* Effect.sleep("3 millis")
    fs.appendFileSync(journal, `-${process.pid}\n`)
    if (!overlap) fs.rmSync(sentinel)
    return overlap ? ("overlap" as const) : ("held" as const)
  })
).pipe(
  Effect.catchTag("StoreFailure", (e) =>
    e.message.includes("is locked by") ? Effect.succeed("refused" as const) : Effect.fail(e)
  )
)

const contend = (attempts: number) =>
  Effect.gen(function* () {
    const counts = { held: 0, refused: 0, overlap: 0 }
    for (let i = 0; i < attempts; i++) counts[yield* attempt]++
    return counts
  })

if (mode === "contend") {
  const attempts = Number(attemptsArg ?? "1")
  const lines = readline.createInterface({ input: process.stdin })
  let queue = Promise.resolve()
  lines.on("line", (line) => {
    if (line !== "go") return
    queue = queue.then(() =>
      run(contend(attempts)).then((c) => void say(`done ${c.held} ${c.refused} ${c.overlap}`), fail)
    )
  })
  lines.on("close", () => void queue.then(() => process.exit(0)))
  say("ready")
} else if (mode === "hold") {
  run(
    Effect.scoped(Effect.zipRight(acquireWriterLock(dataDir, lockDir), Effect.zipRight(Effect.sync(() => say("ready")), Effect.never)))
  ).catch(fail)
} else if (mode === "probe") {
  run(Effect.scoped(acquireWriterLock(dataDir, lockDir))).then(() => process.exit(0), fail)
} else {
  process.stderr.write(`unknown mode ${mode}\n`)
  process.exit(2)
}
