import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { apiKeyOption, natsOption } from "./node.ts"

const dataOption = Options.text("data").pipe(
  Options.withDescription("the validator's directory: its identity key, its replica of the log and the weights it fetched (env BLYAN_VALIDATOR_DATA)"),
  Options.withFallbackConfig(Config.string("BLYAN_VALIDATOR_DATA")),
  Options.withDefault("./validator-data")
)
const heldOutOption = Options.file("held-out").pipe(Options.withDescription("the held-out text (UTF-8) this validator draws its batches from: keep it private"))

/** The handler, with onnxruntime and the network behind it, loads only when `validator` runs. */
const handler = Effect.promise(() => import("./validator-handler.ts"))

export const validatorCommand = Command.make(
  "validator",
  { nats: natsOption("the network to validate for"), apiKey: apiKeyOption("validator"), data: dataOption, heldOut: heldOutOption },
  (args) => Effect.flatMap(handler, (h) => h.runValidatorProcess(args))
).pipe(Command.withDescription("join a Blyan network as a validator: keep a replica of the log, and judge each contribution on your own held-out text"))
