/** What `blyan up` does. Loaded when it runs (see up.ts): the stores and the model stay out of `--help`. */
import { Console, Effect, Either, Option, Schedule } from "effect"
import { serveBlobs } from "../../actors/blob-exchange.ts"
import { serveLog } from "../../actors/log-server.ts"
import { serveRegistry } from "../../actors/registry.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { createLedger, parseNatsBus } from "../ledger.ts"
import { emit, ExitCode, fail } from "./output.ts"

/**
 * Ends when the process that started us is gone (we were re-parented): `npm start` killed by a
 * signal sent to npm alone must not leave us holding the ledger's writer lock.
 */
const parentGone = Effect.gen(function* () {
  const parent = process.ppid
  yield* Effect.repeat(Effect.sync(() => process.ppid === parent), { schedule: Schedule.spaced("1 second"), while: (same) => same })
  yield* Console.error(`blyan up: parent process ${parent} is gone; stopping`)
})

/**
 * The network's services on the bus at `servers`, for as long as the scope: the log served to
 * followers, blobs by address, node registration. This process holds the store; nodes never
 * write the log.
 */
const serveNetwork = (servers: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const bus = yield* makeNatsBus(servers)
    yield* Effect.all([serveLog, serveBlobs, serveRegistry], { discard: true }).pipe(Effect.provideService(Bus, bus))
  })

/** A whole local network in one process: the ledger, held open as its writer until interrupted, served over NATS with `--nats`. */
export const up = ({ json, nats }: { readonly json: boolean; readonly nats: Option.Option<string> }) =>
  Effect.gen(function* () {
    const servers = Option.isNone(nats) ? undefined : parseNatsBus(nats.value)
    if (servers !== undefined && Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    const r = yield* createLedger(defaultSpec)
    if (servers !== undefined) yield* serveNetwork(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
    const on = servers === undefined ? undefined : servers.right.join(",")
    yield* emit(json, { data: r.location, genesis: GENESIS_HASH, head: r.head, created: r.genesis, nats: on ?? null }, () =>
      [
        `blyan up: ledger ${r.location}${r.genesis ? " (initialised)" : ""}`,
        `genesis ${GENESIS_HASH}`,
        `head    seq ${r.head?.seq} ${r.head?.hash}`,
        ...(on === undefined ? [] : [`serving the ledger, blobs and node registration on ${on}`]),
        "running; Ctrl-C to stop"
      ].join("\n")
    )
    yield* parentGone
  }).pipe(Effect.scoped, Effect.onInterrupt(() => Console.error("blyan up: stopped, ledger closed")))
