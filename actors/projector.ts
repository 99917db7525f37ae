import { Effect, Stream, SubscriptionRef } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { decodeEvent, type Envelope } from "../domain/ledger/envelope.ts"
import { evolveLedgerState, initialLedgerState, type LedgerState } from "../domain/projections/ledger-state.ts"

/**
 * The live read models: catches up from seq 0, then follows the log. `position` is the last seq
 * folded in, so a reader can wait until its own append is visible. A log that does not decode
 * stops the projector with the typed error naming the seq.
 */
export const startProjector = Effect.gen(function* () {
  const store = yield* EventStore
  const state = initialLedgerState()
  const position = yield* SubscriptionRef.make(-1)
  const apply = (env: Envelope) =>
    Effect.gen(function* () {
      evolveLedgerState(state, yield* decodeEvent(env))
      yield* SubscriptionRef.set(position, env.seq)
    })
  const fiber = yield* store.subscribe(0).pipe(Stream.runForEach(apply), Effect.forkScoped)
  const awaitSeq = (seq: number) =>
    position.changes.pipe(
      Stream.takeUntil((p) => p >= seq),
      Stream.runDrain
    )
  return { state: (): LedgerState => state, position: SubscriptionRef.get(position), awaitSeq, fiber }
})

export type Projector = Effect.Effect.Success<typeof startProjector>
