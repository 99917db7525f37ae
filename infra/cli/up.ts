import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
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
const hostOption = Options.text("host").pipe(Options.withDescription("the address the explorer listens on (env BLYAN_HTTP_HOST)"), Options.withFallbackConfig(Config.string("BLYAN_HTTP_HOST")), Options.withDefault("127.0.0.1"))
const portOption = Options.integer("port").pipe(
  Options.withDescription("the explorer's port; 0 for any free one (env BLYAN_HTTP_PORT)"),
  Options.withFallbackConfig(Config.integer("BLYAN_HTTP_PORT")),
  Options.withDefault(8000)
)
const trainStepsOption = Options.integer("train-steps").pipe(
  Options.withDescription("on a ledger whose model is still its genesis weights, train it on the shipped corpus for this many steps first; 0 not to (env BLYAN_UP_TRAIN_STEPS)"),
  Options.withFallbackConfig(Config.integer("BLYAN_UP_TRAIN_STEPS")),
  Options.withDefault(500)
)
const heldOutOption = Options.file("held-out").pipe(Options.optional, Options.withDescription("the held-out text this process's validators draw their batches from"))

/** The handler, with the stores and the model behind it, loads only when `up` runs. */
const handler = Effect.promise(() => import("./up-handler.ts"))

export const upCommand = Command.make(
  "up",
  { ...ledgerOptions, json: jsonOption, nats: natsOption("serve the network over NATS").pipe(Options.optional), nodes: nodesOption, validators: validatorsOption, heldOut: heldOutOption, host: hostOption, port: portOption, trainSteps: trainStepsOption },
  (args) => Effect.flatMap(handler, (h) => h.up(args))
).pipe(Command.withDescription("run a Blyan network: the ledger, its router, its round coordinator, node agents and validators (in this process, or joined over NATS), and its explorer over HTTP"))
