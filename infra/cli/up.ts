import { Command } from "@effect/cli"
import { Effect } from "effect"
import { jsonOption, ledgerOptions } from "./options.ts"

/** The handler, with the stores and the model behind it, loads only when `up` runs. */
const handler = Effect.promise(() => import("./up-handler.ts"))

export const upCommand = Command.make("up", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handler, (h) => h.up(args))).pipe(
  Command.withDescription("run a local Blyan network in one process")
)
