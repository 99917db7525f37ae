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
import { causeText, storeFailure as failure } from "../failure.ts"
import { makeLogIndex, nowIso, type LogIndex } from "./log-index.ts"

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
    const client = yield* Effect.acquireRelease(
      Effect.try({ try: () => EventStoreDBClient.connectionString(connectionString), catch: failure("bad EventStoreDB connection string") }),
      (c) => Effect.tryPromise(() => c.dispose()).pipe(Effect.ignore)
    )
    const recovered = yield* recoverChain(client, prefix, connectionString)
    const store: Esdb = { client, prefix, index: yield* makeLogIndex(recovered.envelopes), stopped: undefined }
    const reads = {
      read: (stream: string) => Effect.sync(() => store.index.read(stream)),
      readAll: (fromSeq = 0) => Stream.suspend(() => Stream.fromIterable(store.index.readAll(fromSeq))),
      head: Effect.sync(() => store.index.head())
    }
    if (options.readOnly) {
      const readOnly = new StoreFailure({ reason: "the EventStoreDB store is opened read-only" })
      const api: EventStoreApi = {
        ...reads,
        append: () => Effect.fail(readOnly),
        subscribe: (fromSeq = 0) =>
          Stream.concat(Stream.fromIterable(store.index.readAll(fromSeq)), followAll(store, recovered.position, fromSeq))
      }
      return api
    }
    const append = appendSerially(store, yield* Effect.makeSemaphore(1))
    const api: EventStoreApi = { ...reads, append, subscribe: (fromSeq = 0) => store.index.subscribe(fromSeq) }
    return api
  })

/** One open store: its client, prefix and index; `stopped` is set once appends are refused (fail-stop). */
type Esdb = {
  readonly client: EventStoreDBClient
  readonly prefix: string
  readonly index: LogIndex
  stopped: StoreFailure | undefined
}

/** Whether a recorded event belongs to our log: not a system stream or event, and under our prefix. */
const isOurs = (r: AllStreamRecordedEvent, prefix: string) =>
  !r.streamId.startsWith("$") && !r.type.startsWith("$") && r.streamId.startsWith(prefix)

type Recovered = { readonly envelopes: Envelope[]; readonly position: Position | undefined }

/** Rebuild the chain by reading `$all` forwards, verifying it link by link; also the position of its last event. */
const recoverChain = (client: EventStoreDBClient, prefix: string, connectionString: string): Effect.Effect<Recovered, StoreFailure> =>
  Effect.tryPromise({
    try: async (): Promise<Either.Either<Recovered, StoreFailure>> => {
      const envelopes: Envelope[] = []
      let head: Head | undefined
      let position: Position | undefined
      for await (const resolved of client.readAll({ fromPosition: START, direction: FORWARDS, resolveLinkTos: false })) {
        const recorded = resolved.event
        if (!recorded || !isOurs(recorded, prefix)) continue
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

/**
 * Follow other writers live from `$all`, from `position` (where the snapshot ended), through a
 * server-side filtered subscription, verifying each new event against the chain.
 */
const followAll = (store: Esdb, position: Position | undefined, fromSeq: number): Stream.Stream<Envelope, StoreFailure> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const { client, prefix, index } = store
      let head = index.head()
      const subscription = yield* Effect.acquireRelease(
        Effect.sync(() =>
          client.subscribeToAll({
            fromPosition: position ?? START,
            resolveLinkTos: false,
            filter: prefix === "" ? excludeSystemEvents() : streamNameFilter({ prefixes: [prefix] })
          })
        ),
        (s) => Effect.tryPromise(() => s.unsubscribe()).pipe(Effect.ignore)
      )
      return Stream.fromAsyncIterable(subscription, failure("EventStoreDB subscription failed")).pipe(
        Stream.mapEffect((resolved) => {
          const recorded = resolved.event
          if (!recorded || !isOurs(recorded, prefix)) return Effect.succeed(Option.none<Envelope>())
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

/**
 * Appends, one at a time under `lock`: stage in the index, append to ESDB with our expected
 * revision, and publish only once ESDB has accepted. Any failure stops the store (fail-stop).
 */
const appendSerially =
  (store: Esdb, lock: Effect.Semaphore): EventStoreApi["append"] =>
  (stream, events, expected) =>
    lock.withPermits(1)(
      Effect.gen(function* () {
        const { client, prefix, index } = store
        if (store.stopped) return yield* store.stopped
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
            store.stopped = new StoreFailure({ reason: `another writer changed ${prefix + stream} in EventStoreDB; reopen the store` })
            const actual = e.actualVersion === NO_STREAM ? -1 : Number(e.actualVersion)
            return yield* WrongExpectedRevision.of({ stream, expected: describeExpected(expected), actual })
          }
          store.stopped = new StoreFailure({ reason: `append to EventStoreDB failed (${causeText(e)}); reopen the store` })
          return yield* store.stopped
        }
        yield* index.publishStaged
        const last = staged.envelopes[staged.envelopes.length - 1]!
        return { revision: staged.revision, head: { seq: last.seq, hash: last.hash }, envelopes: staged.envelopes }
      })
    )

export const EsdbEventStoreLive = (connectionString: string, options: EsdbEventStoreOptions = {}) =>
  Layer.scoped(EventStore, makeEsdbEventStore(connectionString, options))
