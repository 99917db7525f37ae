import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats"
import { Effect, Either, type Scope } from "effect"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { causeText } from "../failure.ts"
import { natsConnectOptions } from "../nats-options.ts"

/** One NATS connection with its JetStream handles, shared by the event store and the blob store. */
export type JetStreamConnection = {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  /** The servers as given, for messages. */
  readonly servers: string
}

/**
 * Connect for the scope. The client reconnects forever (a restarted or failed-over server is
 * found again); each request has its own timeout, so a server that stays away fails the
 * operations that need it, not the connection.
 */
export const connectJetStream = (servers: ReadonlyArray<string>): Effect.Effect<JetStreamConnection, StoreFailure, Scope.Scope> => {
  const where = servers.join(",")
  return Effect.gen(function* () {
    const options = natsConnectOptions(servers)
    if (Either.isLeft(options)) return yield* new StoreFailure({ reason: `cannot connect to NATS at ${where}: ${options.left}` })
    const nc = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => connect(options.right),
        catch: (e) => new StoreFailure({ reason: `cannot connect to NATS at ${where}: ${causeText(e)}` })
      }),
      (c) => Effect.promise(() => c.close().catch(() => undefined))
    )
    // The manager checks that JetStream answers on this account.
    const jsm = yield* Effect.tryPromise({
      try: () => nc.jetstreamManager(),
      catch: (e) => new StoreFailure({ reason: `JetStream is not available at ${where}: ${causeText(e)}` })
    })
    return { nc, js: nc.jetstream(), jsm, servers: where }
  })
}
