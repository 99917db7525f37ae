import { Effect, Either } from "effect"
import { EventStore, type AppendResult } from "../domain/ports/event-store.ts"
import { decodeEvent } from "../domain/ledger/envelope.ts"
import type { NewEvent } from "../domain/ledger/events.ts"
import type { Projection } from "../domain/projections/projection.ts"
import { WrongExpectedRevision } from "../domain/ledger/errors.ts"

/** The state of one stream's projection (or of the whole log's), folded from its events. */
export const foldStream = <S>(stream: string | "*", projection: Projection<S, unknown>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const envelopes = stream === "*" ? yield* store.readAll(0) : yield* store.read(stream)
    let state = projection.initial()
    for (const env of envelopes) state = projection.evolve(state, yield* decodeEvent(env))
    return { state, revision: envelopes.length - 1 }
  })

/**
 * The command handler every decider goes through: fold the stream, decide, append expecting the
 * revision the decision saw. A concurrent writer makes the append fail and the whole
 * read-decide-append is retried, so a decision is never made on stale state.
 */
export const handleCommand = <S, E>(
  stream: string,
  projection: Projection<S, unknown>,
  decide: (state: S) => Either.Either<ReadonlyArray<NewEvent>, E>,
  attempts = 5
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const once = Effect.gen(function* () {
      const { state, revision } = yield* foldStream(stream, projection)
      const events = yield* decide(state)
      const expected = revision < 0 ? ("no_stream" as const) : revision
      return yield* store.append(stream, events, expected)
    })
    return yield* once.pipe(
      Effect.retry({ while: (e) => e instanceof WrongExpectedRevision, times: attempts - 1 })
    ) as Effect.Effect<AppendResult, E | Effect.Effect.Error<typeof once>>
  })
