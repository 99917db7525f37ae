import { Chunk, Context, Data, Effect, Either, Option, Stream } from "effect"
import { EventStore, type AppendResult, type EventStoreApi } from "../domain/ports/event-store.ts"
import { SnapshotStore, type SnapshotStoreApi } from "../domain/ports/snapshot-store.ts"
import { decodeEvent, type Envelope, type Head } from "../domain/ledger/envelope.ts"
import type { NewEvent } from "../domain/ledger/events.ts"
import type { Projection } from "../domain/projections/projection.ts"
import type { StateCodec } from "../domain/projections/state-codec.ts"
import { WrongExpectedRevision } from "../domain/ledger/errors.ts"

/**
 * How many events a whole-log fold must have folded (past its snapshot, or from genesis) before
 * it saves a new snapshot: saving costs an encode and a write of the whole state, so it is done
 * only when it spares later commands a real part of the log.
 */
export class SnapshotEvery extends Context.Reference<SnapshotEvery>()("blyan/SnapshotEvery", { defaultValue: () => 1000 }) {}

/** A whole-log fold in progress: its state, the last envelope folded, and each stream's event count so far. */
type LogFold<S> = { state: S; last: Head | undefined; readonly streams: Map<string, number>; folded: number }

/** Fold `envelopes` on into `fold`. */
const foldOn = <S, E>(fold: LogFold<S>, projection: Projection<S, unknown>, envelopes: Stream.Stream<Envelope, E>) =>
  Effect.as(
    Stream.runForEachChunk(envelopes, (chunk) =>
      Effect.gen(function* () {
        for (const env of chunk) {
          fold.state = projection.evolve(fold.state, yield* decodeEvent(env))
          fold.streams.set(env.stream, (fold.streams.get(env.stream) ?? 0) + 1)
          fold.last = env
          fold.folded++
        }
      })
    ),
    fold
  )

/** The log at a snapshot's seq is not the log the snapshot was taken from. */
class SnapshotStale extends Data.TaggedError("SnapshotStale")<{ readonly reason: string }> {}

/**
 * Fold on from a snapshot, in one read of the log from its seq: the first envelope read must be
 * the snapshot's own (`anchor`, same hash), checked and not folded again; the log being a hash
 * chain, that one envelope vouches for every one before it. Otherwise (the log was replaced) the
 * fold is left untouched and the reason returned.
 */
const foldFromAnchor = <S>(fold: LogFold<S>, projection: Projection<S, unknown>, store: EventStoreApi, anchor: Head) =>
  Effect.gen(function* () {
    let checked = false
    const tail = Stream.mapChunksEffect(store.readAll(anchor.seq), (chunk) => {
      if (checked || Chunk.isEmpty(chunk)) return Effect.succeed(chunk)
      const first = Chunk.unsafeHead(chunk)
      if (first.seq !== anchor.seq || first.hash !== anchor.hash)
        return Effect.fail(new SnapshotStale({ reason: `the log has ${first.hash.slice(0, 16)}… at seq ${first.seq}, the snapshot ${anchor.hash.slice(0, 16)}…` }))
      checked = true
      return Effect.succeed(Chunk.drop(chunk, 1))
    })
    const folded = yield* foldOn(fold, projection, tail)
    return checked ? Either.right(folded) : yield* new SnapshotStale({ reason: `the log ends before seq ${anchor.seq}` })
  }).pipe(Effect.catchTag("SnapshotStale", (e) => Effect.succeed(Either.left(e.reason))))

const fresh = <S>(projection: Projection<S, unknown>): LogFold<S> => ({ state: projection.initial(), last: undefined, streams: new Map(), folded: 0 })

/** Drop a snapshot that must not be used; failing to remove it only costs the next fold the same check. */
const discard = (snapshots: SnapshotStoreApi, name: string, why: string, level: "warning" | "debug" = "warning") =>
  Effect.zipRight(
    level === "warning" ? Effect.logWarning(`${why}; discarded, the fold starts from genesis`) : Effect.logDebug(`${why}; discarded`),
    Effect.catchAll(snapshots.remove(name), (e) => Effect.logWarning(`snapshot ${name} could not be removed: ${e.message}`))
  )

/** The saved fold of `projection`, decoded, if there is a usable one; its anchor is still to be checked against the log. */
const resume = <S>(snapshots: SnapshotStoreApi, projection: Projection<S, unknown>, codec: StateCodec<S>) =>
  Effect.gen(function* () {
    const name = projection.name
    const loaded = yield* Effect.either(snapshots.load(name))
    if (Either.isLeft(loaded)) return yield* Effect.as(discard(snapshots, name, loaded.left.message), Option.none())
    if (Option.isNone(loaded.right)) return Option.none()
    const s = loaded.right.value
    if (s.version !== codec.version) return yield* Effect.as(discard(snapshots, name, `snapshot ${name} has codec version ${s.version}, not ${codec.version}`, "debug"), Option.none())
    const state = codec.decode(s.state)
    if (Either.isLeft(state)) return yield* Effect.as(discard(snapshots, name, `snapshot ${name} does not decode: ${state.left.message}`), Option.none())
    const anchor: Head = { seq: s.seq, hash: s.hash }
    const fold: LogFold<S> = { state: state.right, last: anchor, streams: new Map(Object.entries(s.streams)), folded: 0 }
    return Option.some({ fold, anchor })
  })

/** Save the fold as the projection's snapshot; a snapshot is a cache, so failing to save only warns. */
const save = <S>(snapshots: SnapshotStoreApi, projection: Projection<S, unknown>, codec: StateCodec<S>, fold: LogFold<S>, head: Head) =>
  Either.match(codec.encode(fold.state), {
    onLeft: (e) => Effect.logWarning(`snapshot ${projection.name} not saved: its state does not encode: ${e.message}`),
    onRight: (state) =>
      Effect.catchAll(
        snapshots.save({ projection: projection.name, version: codec.version, seq: head.seq, hash: head.hash, streams: Object.fromEntries(fold.streams), state }),
        (e) => Effect.logWarning(`snapshot ${projection.name} not saved: ${e.message}`)
      )
  })

/**
 * Fold the whole log through `projection`. With a snapshot store and a codec, the fold starts
 * from the projection's snapshot and reads only the log after it; a snapshot that does not match
 * the log at its seq (the log was replaced), does not decode, or is of another codec version is
 * discarded and the fold starts from genesis. A fold that read a long part of the log saves its
 * result as the new snapshot.
 */
const foldLog = <S>(projection: Projection<S, unknown>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const fromGenesis = () => foldOn(fresh(projection), projection, store.readAll(0))
    const codec = projection.snapshot
    const snapshots = yield* Effect.serviceOption(SnapshotStore)
    if (codec === undefined || Option.isNone(snapshots)) return yield* fromGenesis()
    const saved = snapshots.value
    const resumed = yield* resume(saved, projection, codec)
    let fold: LogFold<S>
    if (Option.isNone(resumed)) fold = yield* fromGenesis()
    else {
      const resumedFold = yield* foldFromAnchor(resumed.value.fold, projection, store, resumed.value.anchor)
      if (Either.isRight(resumedFold)) fold = resumedFold.right
      else {
        yield* discard(saved, projection.name, `snapshot ${projection.name} does not match the log: ${resumedFold.left}`)
        fold = yield* fromGenesis()
      }
    }
    if (fold.last !== undefined && fold.folded >= (yield* SnapshotEvery)) yield* save(saved, projection, codec, fold, fold.last)
    return fold
  })

/** The state of one stream's projection (or of the whole log's); `revision` is the index of the last event folded. */
export const foldStream = <S>(stream: string | "*", projection: Projection<S, unknown>) =>
  Effect.gen(function* () {
    if (stream === "*") {
      const { state, last } = yield* foldLog(projection)
      return { state, revision: last?.seq ?? -1 }
    }
    const events = yield* (yield* EventStore).read(stream)
    let state = projection.initial()
    for (const env of events) state = projection.evolve(state, yield* decodeEvent(env))
    return { state, revision: events.length - 1 }
  })

/** The whole log's state, and the revision of `stream` as of the last event folded. */
const foldLogFor = <S>(stream: string, projection: Projection<S, unknown>) =>
  Effect.map(foldLog(projection), ({ state, streams }) => ({ state, revision: (streams.get(stream) ?? 0) - 1 }))

export interface Command<S, E> {
  /** The stream the decision appends to; its revision is what the append expects. */
  readonly stream: string
  readonly projection: Projection<S, unknown>
  /** What the decision reads: the target stream alone (default), or the whole log. */
  readonly reads?: "stream" | "log"
  /** The events to append, none when there is nothing to do, or a refusal. */
  readonly decide: (state: S) => Either.Either<ReadonlyArray<NewEvent>, E>
}

/**
 * The command handler every decider goes through: fold, decide, append expecting the revision
 * the decision saw. A concurrent writer makes the append fail and the whole read-decide-append is
 * retried, so a decision is never made on stale state. A decision of no events appends nothing
 * and yields undefined.
 */
export const handleCommand = <S, E>(command: Command<S, E>, attempts = 5) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const once = Effect.gen(function* () {
      const { state, revision } = command.reads === "log" ? yield* foldLogFor(command.stream, command.projection) : yield* foldStream(command.stream, command.projection)
      const events = yield* command.decide(state)
      if (events.length === 0) return undefined
      return yield* store.append(command.stream, events, revision < 0 ? "no_stream" : revision)
    })
    return yield* once.pipe(
      Effect.retry({ while: (e) => e instanceof WrongExpectedRevision, times: attempts - 1 })
    ) as Effect.Effect<AppendResult | undefined, E | Effect.Effect.Error<typeof once>>
  })
