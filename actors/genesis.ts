import { Effect } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { newEvent } from "../domain/ledger/events.ts"
import { GENESIS_COVENANT } from "../domain/ledger/genesis.ts"
import { Streams } from "../domain/ledger/streams.ts"
import type { ModelSpec } from "../domain/model/spec.ts"
import { publishGenesisModel } from "./model-ledger.ts"

/** Write the genesis covenant into an empty log; a log that has it is left as it is. */
export const ensureGenesis = Effect.gen(function* () {
  const store = yield* EventStore
  if ((yield* store.head) !== undefined) return { created: false }
  yield* store.append(Streams.chainA, [newEvent("GenesisCovenantSealed", GENESIS_COVENANT)], "no_stream")
  return { created: true }
})

/** A ready ledger: the covenant, then the model spec and its genesis weights (both idempotent). */
export const initLedger = (spec: ModelSpec) =>
  Effect.gen(function* () {
    const { created } = yield* ensureGenesis
    const model = yield* publishGenesisModel(spec)
    return { created, ...model }
  })
