import { Effect, Either } from "effect"
import { parseNatsBus } from "../ledger.ts"
import { ExitCode, fail } from "./output.ts"

/**
 * The bus a `--nats URL` names, connected for the scope: a malformed URL is a usage error, a server
 * that cannot be reached leaves the command unavailable. The NATS client loads here, only for the
 * commands that use it.
 */
export const natsBusOf = (url: string) =>
  Effect.gen(function* () {
    const servers = parseNatsBus(url)
    if (Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    const { makeNatsBus } = yield* Effect.promise(() => import("../../adapters/bus/nats.ts"))
    return yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
  })
