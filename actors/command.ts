import { Effect, Either, Stream } from "effect"
import { EventStore, type AppendResult } from "../domain/ports/event-store.ts"
import { decodeEvent, type Envelope } from "../domain/ledger/envelope.ts"
import type { NewEvent } from "../domain/ledger/events.ts"
import type { Projection } from "../domain/projections/projection.ts"
import { WrongExpectedRevision, type StoreFailure } from "../domain/ledger/errors.ts"

/** Fold envelopes through a projection; `revision` is the index of the last one in `stream` (all when undefined). */
const foldEnvelopes = <S>(envelopes: Stream.Stream<Envelope, StoreFailure>, projection: Projection<S, unknown>, stream: string | undefined) =>
  Effect.gen(function* () {
    let state = projection.initial()
    let revision = -1
    yield* Stream.runForEachChunk(envelopes, (chunk) =>
      Effect.gen(function* () {
        for (const env of chunk) {
          state = projection.evolve(state, yield* decodeEvent(env))
          if (stream === undefined || env.stream === stream) revision++
        }
      })
    )
    return { state, revision }
  })

/** The state of one stream's projection (or of the whole log's), folded from its events. */
export const foldStream = <S>(stream: string | "*", projection: Projection<S, unknown>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const envelopes = stream === "*" ? store.readAll(0) : Stream.fromIterable(yield* store.read(stream))
    return yield* foldEnvelopes(envelopes, projection, undefined)
  })

/** The whole log's state, and the revision of `stream` within it. */
const foldLogFor = <S>(stream: string, projection: Projection<S, unknown>) =>
  Effect.flatMap(EventStore, (store) => foldEnvelopes(store.readAll(0), projection, stream))

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
