/**
 * A child process for the JetStream tests that need more than one writer process (run with
 * `node --import tsx`):
 *
 *   jetstream-writer <nats url> <stream> <appenders> <appends per appender>
 *
 * Opens the JetStream event store, prints "ready", waits for a line on stdin (so that several
 * writers can be started together), then appends with `appenders` concurrent appenders until each
 * has made its appends; prints "<seq> <hash>" for every envelope of each acknowledged append, only
 * after its append has resolved. Every fifth append goes to the stream `node-shared` with the exact
 * revision read just before, re-reading after each WrongExpectedRevision, as a command handler
 * would. Exits 0 when done; on any other failure prints it and exits 3.
 */
import { Effect, Either } from "effect"
import { connectJetStream } from "../../adapters/eventstore/jetstream-connection.ts"
import { makeJetStreamEventStore } from "../../adapters/eventstore/jetstream.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import type { EventStoreApi } from "../../domain/ports/event-store.ts"
import { keyIssued } from "./events.ts"

const [url, stream, appendersArg, appendsArg] = process.argv.slice(2)
if (!url || !stream || !appendersArg || !appendsArg) {
  process.stderr.write("usage: jetstream-writer <nats url> <stream> <appenders> <appends per appender>\n")
  process.exit(2)
}

const say = (line: string) => process.stdout.write(line + "\n")

/** Append to `node-shared` at the revision just read, re-deciding after every lost race. */
const appendShared = (store: EventStoreApi, node: string) =>
  Effect.gen(function* () {
    for (;;) {
      const revision = (yield* store.read("node-shared")).length - 1
      const r = yield* Effect.either(store.append("node-shared", [newEvent("NodeRetired", { node })], revision < 0 ? "no_stream" : revision))
      if (Either.isRight(r)) return r.right
      if (r.left._tag !== "WrongExpectedRevision") return yield* r.left
    }
  })

const program = Effect.gen(function* () {
  const conn = yield* connectJetStream([url])
  const store = yield* makeJetStreamEventStore(conn, { stream, replicas: 1 })
  say("ready")
  yield* Effect.async<void>((resume) => void process.stdin.once("data", () => resume(Effect.void)))
  const tag = process.pid
  yield* Effect.forEach(
    Array.from({ length: Number(appendersArg) }, (_, a) => a),
    (a) =>
      Effect.forEach(
        Array.from({ length: Number(appendsArg) }, (_, i) => i),
        (i) =>
          Effect.gen(function* () {
            // Distinct payloads per process, appender and append, so a doubled append would show.
            const n = tag * 1_000_000 + a * 10_000 + i
            const node = `${tag}-${a}-${i}`
            const r =
              i % 5 === 4
                ? yield* appendShared(store, node)
                : i % 5 === 3
                  ? yield* store.append(`node-${tag}-${a}`, [newEvent("NodeBanned", { node, reason: `append ${i}` }), newEvent("NodeRetired", { node })], "any")
                  : yield* store.append("keys", [keyIssued(n)], "any")
            say(r.envelopes.map((e) => `${e.seq} ${e.hash}`).join("\n"))
          }),
        { discard: true }
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
