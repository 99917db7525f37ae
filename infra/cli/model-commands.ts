import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { ExitCode, fail } from "./output.ts"
import { natsOption } from "./node.ts"
import { jsonOption, ledgerOptions } from "./options.ts"

/** The handlers, with the model and onnxruntime behind them, load only when one of these commands runs. */
const handlers = Effect.promise(() => import("./model-handlers.ts"))

const expertOption = Options.text("expert").pipe(Options.optional, Options.withDescription("a part name, e.g. layer0.expert1"))
const outOption = Options.text("out").pipe(Options.optional, Options.withDescription("output .safetensors file"))
const onnxOption = Options.text("onnx").pipe(Options.optional, Options.withDescription("directory for the model's ONNX graphs"))

/** The checkpoint handlers load only when a checkpoint command runs. */
const checkpointHandlers = Effect.promise(() => import("./checkpoint-handlers.ts"))

const hfOption = (what: string) => Options.directory("hf").pipe(Options.withDescription(what))
const modelOption = Options.text("model").pipe(Options.withDescription("an imported model's name"))

export const exportCommand = Command.make(
  "export",
  {
    ...ledgerOptions,
    json: jsonOption,
    expert: expertOption,
    out: outOption,
    onnx: onnxOption,
    hf: hfOption("write an imported model into this directory in the Hugging Face layout (with --model)").pipe(Options.optional),
    model: modelOption.pipe(Options.optional)
  },
  ({ hf, model, ...args }) =>
    Effect.gen(function* () {
      if (Option.isNone(hf) && Option.isNone(model)) return yield* Effect.flatMap(handlers, (h) => h.exportModel(args))
      if (Option.isNone(hf) || Option.isNone(model)) return yield* fail("--hf DIR and --model NAME go together", ExitCode.usage)
      return yield* Effect.flatMap(checkpointHandlers, (h) => h.exportHf({ json: args.json, hf: hf.value, model: model.value }))
    })
).pipe(Command.withDescription("export a part's weights as safetensors, the model's graphs as ONNX, or an imported model in the Hugging Face layout"))

export const importCommand = Command.make(
  "import",
  {
    ...ledgerOptions,
    json: jsonOption,
    hf: hfOption("a checkpoint directory in the Hugging Face layout: config.json, safetensors shards (with their index), tokenizer.json"),
    name: Options.text("name").pipe(Options.optional, Options.withDescription("the model's name on the ledger (default: the directory's)"))
  },
  (args) => Effect.flatMap(checkpointHandlers, (h) => h.importModel(args))
).pipe(Command.withDescription("import an open MoE checkpoint (Mixtral, Qwen3-MoE): a spec and one block per part, each in its stored dtype"))

const maxTokensOption = Options.integer("max-tokens").pipe(Options.withDefault(64), Options.withDescription("tokens to generate (bytes, for the built-in model)"))
const temperatureOption = Options.float("temperature").pipe(Options.withDefault(0.8), Options.withDescription("0 for greedy"))
const seedOption = Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("sampling seed"))
const promptArg = Args.text({ name: "prompt" })

export const chatCommand = Command.make(
  "chat",
  {
    ...ledgerOptions,
    json: jsonOption,
    maxTokens: maxTokensOption,
    temperature: temperatureOption,
    seed: seedOption,
    nats: natsOption("chat with the network's router instead of running the model here").pipe(Options.optional),
    prove: Options.boolean("prove").pipe(Options.withDescription("attach proofs that every block the answer names is on the log: a signed tree head and an inclusion proof per block (check them with `blyan verify --answer`)")),
    model: Options.text("model").pipe(
      Options.optional,
      Options.withDescription("the model: an imported model's name (`blyan import --hf`), or blyan-moe for the built-in one (default: the model published last)")
    ),
    prompt: promptArg
  },
  (args) => Effect.flatMap(handlers, (h) => h.chatWithModel(args))
).pipe(Command.withDescription("generate with a model of the ledger and show which expert blocks (and, on a network, which nodes) produced each token"))

const corpusOption = Options.text("corpus").pipe(Options.withDescription("training text (UTF-8)"))
const heldOutOption = Options.text("held-out").pipe(Options.optional, Options.withDescription("held-out text; default: the last tenth of the corpus"))
const stepsOption = Options.integer("steps").pipe(Options.withDescription("optimiser steps"))
const batchOption = Options.integer("batch").pipe(Options.withDefault(8))
const lrOption = Options.float("lr").pipe(Options.withDefault(3e-3))

const pipelineOption = Options.boolean("pipeline").pipe(
  Options.withDescription("train through a pipeline: stages of the model's layers in 1F1B order, activations and gradients over the bus (this process's, or NATS with --nats) with the pipeline transport")
)
const stagesOption = Options.integer("stages").pipe(Options.withDefault(2), Options.withDescription("pipeline stages, each an even share of the layers (with --pipeline)"))
const microbatchesOption = Options.integer("microbatches").pipe(Options.withDefault(4), Options.withDescription("microbatches per step; they must divide --batch (with --pipeline)"))

export const trainCommand = Command.make(
  "train",
  {
    ...ledgerOptions,
    json: jsonOption,
    corpus: corpusOption,
    heldOut: heldOutOption,
    steps: stepsOption,
    batch: batchOption,
    lr: lrOption,
    seed: seedOption,
    pipeline: pipelineOption,
    stages: stagesOption,
    microbatches: microbatchesOption,
    nats: natsOption("carry the pipeline's tensors over NATS (with --pipeline)").pipe(Options.optional),
    planId: Options.text("plan").pipe(
      Options.optional,
      Options.withDescription("a frozen plan whose stages to use (with --pipeline): the run is its epoch's round, recorded with its stage failures and fallback")
    ),
    epoch: Options.text("epoch").pipe(
      Options.optional,
      Options.withDescription(
        "run (or resume) this training epoch (with --pipeline and --nats): planned on the registered nodes that are live, its plan frozen, --rounds rounds of --steps steps each with a checkpoint after each round; completed when held-out loss improves, rolled back otherwise"
      )
    ),
    rounds: Options.integer("rounds").pipe(Options.withDefault(1), Options.withDescription("rounds of the epoch (with --epoch)"))
  },
  (args) => Effect.flatMap(handlers, (h) => h.trainModel(args))
).pipe(Command.withDescription("train the whole model (in this process, or through a pipeline of stages) and append the improved parts as new blocks"))
