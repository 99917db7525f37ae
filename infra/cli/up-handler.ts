/** What `blyan up` does. Loaded when it runs (see up.ts): the stores and the model stay out of `--help`. */
import { Console, Effect, Schedule } from "effect"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { createLedger } from "../ledger.ts"
import { emit } from "./output.ts"

/**
 * Ends when the process that started us is gone (we were re-parented): `npm start` killed by a
 * signal sent to npm alone must not leave us holding the ledger's writer lock.
 */
const parentGone = Effect.gen(function* () {
  const parent = process.ppid
  yield* Effect.repeat(Effect.sync(() => process.ppid === parent), { schedule: Schedule.spaced("1 second"), while: (same) => same })
  yield* Console.error(`blyan up: parent process ${parent} is gone; stopping`)
})

/** A whole local network in one process; for now the ledger, held open as its writer until interrupted. */
export const up = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const r = yield* createLedger(defaultSpec)
    yield* emit(json, { data: r.location, genesis: GENESIS_HASH, head: r.head, created: r.genesis }, () =>
      [`blyan up: ledger ${r.location}${r.genesis ? " (initialised)" : ""}`, `genesis ${GENESIS_HASH}`, `head    seq ${r.head?.seq} ${r.head?.hash}`, "running; Ctrl-C to stop"].join("\n")
    )
    yield* parentGone
  }).pipe(Effect.onInterrupt(() => Console.error("blyan up: stopped, ledger closed")))
