import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { choiceOption } from "./options.ts"

/** `--nats URL` (env BLYAN_NATS): the network's bus. */
export const natsOption = (what: string) =>
  Options.text("nats").pipe(Options.withDescription(`${what}: nats://HOST:PORT[,HOST:PORT…] (env BLYAN_NATS)`), Options.withFallbackConfig(Config.string("BLYAN_NATS")))

/** `--api-key KEY` (env BLYAN_API_KEY): what admits this process to the network in `role`. */
export const apiKeyOption = (role: string) =>
  Options.text("api-key").pipe(Options.withDescription(`an API key of role ${role} (env BLYAN_API_KEY)`), Options.withFallbackConfig(Config.string("BLYAN_API_KEY")))
const nodeDataOption = Options.text("data").pipe(
  Options.withDescription("the node's directory: its identity key, its replica of the log and its blocks (env BLYAN_NODE_DATA)"),
  Options.withFallbackConfig(Config.string("BLYAN_NODE_DATA")),
  Options.withDefault("./node-data")
)
const nodeIdOption = Options.text("node-id").pipe(Options.withDescription("the node's id (default: from its public key)"), Options.optional)
const expertsOption = Options.text("experts").pipe(Options.withDescription("experts to host: all, or LAYER.EXPERT,… (e.g. 0.1,1.3)"), Options.withDefault("all"))
const modelOption = Options.text("model").pipe(
  Options.optional,
  Options.withDescription("the model whose experts to host: an imported model's name, or blyan-moe for the built-in one (default: the model published last)")
)
const deviceOption = choiceOption("device", ["cpu", "cuda"] as const).pipe(Options.withDefault("cpu" as const))

/** The handler, with onnxruntime and the network behind it, loads only when `node` runs. */
const handler = Effect.promise(() => import("./node-handler.ts"))

export const nodeCommand = Command.make(
  "node",
  { nats: natsOption("the network to join"), apiKey: apiKeyOption("node"), data: nodeDataOption, nodeId: nodeIdOption, model: modelOption, experts: expertsOption, device: deviceOption },
  (args) => Effect.flatMap(handler, (h) => h.runNodeAgent(args))
).pipe(Command.withDescription("join a Blyan network as a GPU node: register, keep a replica of the log, serve experts"))
