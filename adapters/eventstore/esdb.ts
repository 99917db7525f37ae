import {
  ANY,
  EventStoreDBClient,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  streamNameFilter,
  WrongExpectedVersionError,
  type AllStreamRecordedEvent,
  type AppendExpectedRevision,
  type EventData,
  type JSONType,
  type Position
} from "@eventstore/db-client"
import { Effect, Either, Layer, Option, Stream, type Scope } from "effect"
import { parseEnvelope, verifyLink, type Envelope, type Head } from "../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { StoreFailure, WrongExpectedRevision } from "../../domain/ledger/errors.ts"
import { describeExpected, EventStore, type EventStoreApi, type ExpectedRevision } from "../../domain/ports/event-store.ts"
import { makeLogIndex, nowIso } from "./log-index.ts"

/**
 * EventStoreDB adapter. Our log is one global hash chain, so its order must be one order: every
 * envelope goes to the ESDB stream of the same name (after an optional `prefix`), with our event
 * type and the whole envelope as JSON data, and appends are serialised in this process. At open
 * the chain is rebuilt by reading `$all` forwards (system events and other prefixes skipped) and
 * verified link by link; a record that does not verify refuses the open, naming its seq.
 *
 * Supported: ONE writer process per database (or per prefix). ESDB's own expected-revision check
 * backs ours up; if it ever disagrees with our index, or an append's outcome is unknown (timeout,
 * lost connection), another writer or a lost ack may have moved the chain, so the store refuses
 * further appends until it is reopened (fail-stop), rather than risk a fork.
 *
 * `subscribe` in the writer comes from the in-process index (every append passes through it); a
 * `readOnly` open follows other writers: catch-up from its snapshot, then live from `$all` through
 * a server-side filtered `subscribeToAll`, each event verified against the chain.
 */
export type EsdbEventStoreOptions = {
  /** Prepended to every ESDB stream name: lets several logs (or test runs) share a database. */
  readonly prefix?: string
  readonly readOnly?: boolean
}

const failure = (what: string) => (e: unknown) => new StoreFailure({ reason: `${what}: ${(e as Error)?.message ?? String(e)}` })

export const toEsdbRevision = (e: ExpectedRevision): AppendExpectedRevision =>
  e === "any" ? ANY : e === "no_stream" ? NO_STREAM : e === "stream_exists" ? STREAM_EXISTS : BigInt(e)

/** A stable event id per envelope, so a retried append is deduplicated by the server. */
export const eventIdOf = (hash: string): string => {
  const variant = ((parseInt(hash[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${hash.slice(0, 8)}-${hash.slice(8, 12)}-4${hash.slice(13, 16)}-${variant}${hash.slice(17, 20)}-${hash.slice(20, 32)}`
}

const toEventData = (env: Envelope): EventData =>
  jsonEvent({ id: eventIdOf(env.hash), type: env.type, data: env as unknown as JSONType })

/** Decode one recorded ESDB event as the envelope at `seq`, checking it against our chain. */
const decodeRecorded = (
  recorded: AllStreamRecordedEvent,
  prefix: string,
  seq: number,
  head: Head | undefined
): Either.Either<Envelope, StoreFailure> => {
  const bad = (reason: string) => Either.left(new StoreFailure({ seq, reason: `esdb event ${recorded.streamId}@${recorded.revision}: ${reason}` }))
  if (!recorded.isJson) return bad("not a JSON event")
  const parsed = parseEnvelope(seq, JSON.stringify(recorded.data))
  if (Either.isLeft(parsed)) return bad(parsed.left.reason)
  const env = parsed.right
  if (prefix + env.stream !== recorded.streamId || env.type !== recorded.type) return bad("stream or type differs from the envelope it carries")
  const link = verifyLink(head, env)
  if (Either.isLeft(link)) return Either.left(new StoreFailure({ seq: link.left.seq, reason: link.left.reason }))
  if (env.seq === 0 && env.hash !== GENESIS_HASH) return bad("seq 0 is not the genesis covenant every install shares")
  return Either.right(env)
}

export const makeEsdbEventStore = (
  connectionString: string,
  options: EsdbEventStoreOptions = {}
): Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const prefix = options.prefix ?? ""
    const ours = (r: AllStreamRecordedEvent) => !r.streamId.startsWith("$") && !r.type.startsWith("$") && r.streamId.startsWith(prefix)
    const client = yield* Effect.acquireRelease(
      Effect.try({ try: () => EventStoreDBClient.connectionString(connectionString), catch: failure("bad EventStoreDB connection string") }),
      (c) => Effect.tryPromise(() => c.dispose()).pipe(Effect.ignore)
    )

    const recovered = yield* Effect.tryPromise({
      try: async (): Promise<Either.Either<{ envelopes: Envelope[]; position: Position | undefined }, StoreFailure>> => {
        const envelopes: Envelope[] = []
        let head: Head | undefined
        let position: Position | undefined
        for await (const resolved of client.readAll({ fromPosition: START, direction: FORWARDS, resolveLinkTos: false })) {
          const recorded = resolved.event
          if (!recorded || !ours(recorded)) continue
          const env = decodeRecorded(recorded, prefix, envelopes.length, head)
          if (Either.isLeft(env)) return Either.left(env.left)
          envelopes.push(env.right)
          head = { seq: env.right.seq, hash: env.right.hash }
          position = recorded.position
        }
        return Either.right({ envelopes, position })
      },
      catch: failure(`cannot read $all from ${connectionString}`)
    }).pipe(Effect.flatMap((r) => r))

    const index = yield* makeLogIndex(recovered.envelopes)
    const lock = yield* Effect.makeSemaphore(1)
    let stopped: StoreFailure | undefined

    const live = (fromSeq: number): Stream.Stream<Envelope, StoreFailure> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          let head = index.head()
          const subscription = yield* Effect.acquireRelease(
            Effect.sync(() =>
              client.subscribeToAll({
                fromPosition: recovered.position ?? START,
                resolveLinkTos: false,
                filter: prefix === "" ? excludeSystemEvents() : streamNameFilter({ prefixes: [prefix] })
              })
            ),
            (s) => Effect.tryPromise(() => s.unsubscribe()).pipe(Effect.ignore)
          )
          return Stream.fromAsyncIterable(subscription, failure("EventStoreDB subscription failed")).pipe(
            Stream.mapEffect((resolved) => {
              const recorded = resolved.event
              if (!recorded || !ours(recorded)) return Effect.succeed(Option.none<Envelope>())
              const next = head ? head.seq + 1 : 0
              const seq = (recorded.data as { seq?: unknown } | undefined)?.seq
              // Already known (the start position is the last one read): not a new link.
              if (typeof seq === "number" && seq < next) return Effect.succeed(Option.none<Envelope>())
              return Effect.map(decodeRecorded(recorded, prefix, next, head), (env) => {
                head = { seq: env.seq, hash: env.hash }
                return env.seq >= fromSeq ? Option.some(env) : Option.none()
              })
            }),
            Stream.filterMap((o) => o)
          )
        })
      )

    const api: EventStoreApi = {
      append: (stream, events, expected) =>
        options.readOnly
          ? Effect.fail(new StoreFailure({ reason: "the EventStoreDB store is opened read-only" }))
          : lock.withPermits(1)(
              Effect.gen(function* () {
                if (stopped) return yield* stopped
                const at = yield* nowIso
                const staged = yield* index.stage(stream, events, expected, at)
                const written = yield* Effect.either(
                  Effect.tryPromise({
                    try: () =>
                      client.appendToStream(prefix + stream, staged.envelopes.map(toEventData), {
                        expectedRevision: toEsdbRevision(expected)
                      }),
                    catch: (e) => e
                  })
                )
                if (Either.isLeft(written)) {
                  index.dropStaged()
                  const e = written.left
                  if (e instanceof WrongExpectedVersionError) {
                    stopped = new StoreFailure({ reason: `another writer changed ${prefix + stream} in EventStoreDB; reopen the store` })
                    const actual = e.actualVersion === NO_STREAM ? -1 : Number(e.actualVersion)
                    return yield* new WrongExpectedRevision({ stream, expected: describeExpected(expected), actual })
                  }
                  stopped = new StoreFailure({ reason: `append to EventStoreDB failed (${failure("")(e).reason}); reopen the store` })
                  return yield* stopped
                }
                yield* index.publishStaged
                const last = staged.envelopes[staged.envelopes.length - 1]!
                return { revision: staged.revision, head: { seq: last.seq, hash: last.hash }, envelopes: staged.envelopes }
              })
            ),
      read: (stream) => Effect.sync(() => index.read(stream)),
      readAll: (fromSeq = 0) => Effect.sync(() => index.readAll(fromSeq)),
      subscribe: (fromSeq = 0) =>
        options.readOnly ? Stream.concat(Stream.fromIterable(index.readAll(fromSeq)), live(fromSeq)) : index.subscribe(fromSeq),
      head: Effect.sync(() => index.head())
    }
    return api
  })

export const EsdbEventStoreLive = (connectionString: string, options: EsdbEventStoreOptions = {}) =>
  Layer.scoped(EventStore, makeEsdbEventStore(connectionString, options))
