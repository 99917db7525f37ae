import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { EventStore } from "../../domain/ports/event-store.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { initLedger } from "../../actors/genesis.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { fileLedger } from "../ledger.ts"
import { dataOption, jsonOption } from "./options.ts"
import { emit, orFail } from "./output.ts"

/** A whole local network in one process; for now the ledger, held open until interrupted. */
export const upCommand = Command.make("up", { data: dataOption, json: jsonOption }, ({ data, json }) =>
  Effect.gen(function* () {
    const { created } = yield* initLedger(defaultSpec)
    const head = yield* (yield* EventStore).head
    yield* emit(json, { data, genesis: GENESIS_HASH, head, created }, () =>
      [`blyan up: ledger ${data}${created ? " (initialised)" : ""}`, `genesis ${GENESIS_HASH}`, `head    seq ${head?.seq} ${head?.hash}`, "running; Ctrl-C to stop"].join("\n")
    )
    yield* Effect.never
  }).pipe(
    orFail,
    Effect.provide(fileLedger(data)),
    orFail,
    Effect.onInterrupt(() => Console.error("blyan up: stopped, ledger closed"))
  )
).pipe(Command.withDescription("run a local Blyan network in one process"))
