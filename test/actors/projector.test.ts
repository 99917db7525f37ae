import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { Effect } from "effect"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { startProjector } from "../../actors/projector.ts"
import { replay } from "../../domain/ledger/audit.ts"
import { viewLedgerState } from "../../domain/projections/ledger-state.ts"
import { canonicalize } from "../../domain/ledger/jcs.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { arbitraryLog, testTrust } from "../support/ledger.ts"
import { logOf } from "../support/log.ts"

const canon = (v: unknown) => canonicalize(JSON.parse(JSON.stringify(v)))

describe("the projector", () => {
  it.live("live projections, caught up and then followed, equal a fresh rebuild from seq 0 (property)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(arbitraryLog(), fc.integer({ min: 0, max: 10 }), (log, live) =>
          // A fast-check async property needs a Promise: each case runs its own scoped program.
          Effect.runPromise(
            Effect.scoped(
              Effect.gen(function* () {
                const store = yield* makeMemoryEventStore(log)
                const projector = yield* startProjector.pipe(Effect.provideService(EventStore, store))
                for (let i = 0; i < live; i++) yield* store.append(`node-x${i}`, [newEvent("NodeRetired", { node: `x${i}` })], "any")
                const head = yield* store.head
                yield* projector.awaitSeq(head!.seq)
                const replayed = replay(yield* logOf(store), testTrust)
                expect(replayed.firstBad).toBeUndefined()
                expect(canon(viewLedgerState(projector.state()))).toBe(canon(viewLedgerState(replayed.state)))
              })
            )
          )
        ),
        { numRuns: 25 }
      )
    )
  )
})
