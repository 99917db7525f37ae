import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { jsonOption, ledgerOptions } from "./options.ts"

/** `--nats URL` (env BLYAN_NATS): the network's bus. */
const natsOption = Options.text("nats").pipe(
  Options.withDescription("serve the ledger, blobs and node registration over NATS: nats://HOST:PORT[,HOST:PORT…] (env BLYAN_NATS)"),
  Options.withFallbackConfig(Config.string("BLYAN_NATS")),
  Options.optional
)

/** The handler, with the stores and the model behind it, loads only when `up` runs. */
const handler = Effect.promise(() => import("./up-handler.ts"))

export const upCommand = Command.make("up", { ...ledgerOptions, json: jsonOption, nats: natsOption }, (args) => Effect.flatMap(handler, (h) => h.up(args))).pipe(
  Command.withDescription("run a local Blyan network in one process")
)
