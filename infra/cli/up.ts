import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { natsOption } from "./node.ts"
import { jsonOption, ledgerOptions } from "./options.ts"

const nodesOption = Options.integer("nodes").pipe(
  Options.withDescription("node agents to run in this process, each serving every expert (default: 2 on the memory bus, none with --nats)"),
  Options.optional
)

/** The handler, with the stores and the model behind it, loads only when `up` runs. */
const handler = Effect.promise(() => import("./up-handler.ts"))

export const upCommand = Command.make(
  "up",
  { ...ledgerOptions, json: jsonOption, nats: natsOption("serve the network over NATS").pipe(Options.optional), nodes: nodesOption },
  (args) => Effect.flatMap(handler, (h) => h.up(args))
).pipe(Command.withDescription("run a Blyan network: the ledger, its router and node agents (in this process, or joined over NATS)"))
