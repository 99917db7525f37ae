/**
 * A child process for the file store's crash and lock tests (run with `node --import tsx`).
 *
 *   append <dir> <concurrency> [segmentBytes]
 *                               open the store (rolling segments at `segmentBytes`, if given),
 *                               then append forever with `concurrency` appenders; print
 *                               "<seq> <hash>" for every envelope of each acknowledged append,
 *                               only after its append has resolved
 *   hold <dir>                  open the store, print "ready", keep it open until killed
 *   probe <dir>                 open the store and exit 0; on failure print the error, exit 3
 */
import { Effect } from "effect"
import { makeFileEventStore } from "../../adapters/eventstore/file.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { genesisEvent, keyIssued } from "./events.ts"

const [mode, dir, concurrencyArg, segmentBytesArg] = process.argv.slice(2)
if (!mode || !dir) {
  process.stderr.write("usage: crash-writer append|hold|probe <dir> [concurrency]\n")
  process.exit(2)
}

const say = (line: string) => process.stdout.write(line + "\n")

const program = Effect.gen(function* () {
  const store = yield* makeFileEventStore(dir, { segmentBytes: segmentBytesArg === undefined ? undefined : Number(segmentBytesArg) })
  if (mode === "probe") return
  if (mode === "hold") {
    say("ready")
    return yield* Effect.never
  }
  if ((yield* store.head) === undefined) {
    const g = yield* store.append("chain-A", [genesisEvent()], "no_stream")
    say(`${g.head.seq} ${g.head.hash}`)
  }
  const concurrency = Number(concurrencyArg ?? "1")
  // Distinct payloads per process and appender, so a resurrected or mixed-up record would show.
  const tag = `${process.pid}`
  yield* Effect.forEach(
    Array.from({ length: concurrency }, (_, a) => a),
    (a) =>
      Effect.forever(
        Effect.gen(function* () {
          const n = Math.floor(Math.random() * 1e9)
          // Some appends carry two events, to check that an append survives whole or not at all.
          const node = `${tag}-${a}-${n}`
          const events = n % 3 === 0 ? [newEvent("NodeBanned", { node, reason: `append ${n}` }), newEvent("NodeRetired", { node })] : [keyIssued(n)]
          const r = yield* store.append(n % 3 === 0 ? `node-${tag}-${a}` : "keys", events, "any")
          say(r.envelopes.map((e) => `${e.seq} ${e.hash}`).join("\n"))
        })
      ),
    { concurrency: "unbounded", discard: true }
  )
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).message ?? String(e)}\n`)
    process.exit(3)
  }
)
