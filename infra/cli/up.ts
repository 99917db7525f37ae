import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { natsOption } from "./node.ts"
import { jsonOption, ledgerOptions } from "./options.ts"

const nodesOption = Options.integer("nodes").pipe(
  Options.withDescription("node agents to run in this process, each serving every expert (default: 2 on the memory bus, none with --nats)"),
  Options.optional
)

const validatorsOption = Options.integer("validators").pipe(
  Options.withDescription("validators to run in this process, deciding the rounds of contributions sent to this network (needs --held-out)"),
  Options.withDefault(0)
)
const heldOutOption = Options.file("held-out").pipe(Options.optional, Options.withDescription("the held-out text this process's validators draw their batches from"))

/** The handler, with the stores and the model behind it, loads only when `up` runs. */
const handler = Effect.promise(() => import("./up-handler.ts"))

export const upCommand = Command.make(
  "up",
  { ...ledgerOptions, json: jsonOption, nats: natsOption("serve the network over NATS").pipe(Options.optional), nodes: nodesOption, validators: validatorsOption, heldOut: heldOutOption },
  (args) => Effect.flatMap(handler, (h) => h.up(args))
).pipe(Command.withDescription("run a Blyan network: the ledger, its router, its round coordinator, node agents and validators (in this process, or joined over NATS)"))
