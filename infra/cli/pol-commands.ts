import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { natsOption } from "./node.ts"
import { jsonOption, ledgerOptions } from "./options.ts"

/** The handlers, with the model and onnxruntime behind them, load only when one of these commands runs. */
const handlers = Effect.promise(() => import("./pol-handlers.ts"))

const expertOption = Options.text("expert").pipe(Options.withDescription("the part to improve, e.g. layer0.expert1"))
const validatorsOption = Options.integer("validators").pipe(Options.withDefault(3), Options.withDescription("local validators that decide the round (their keys kept beside the ledger)"))

/** What every contribution names: the ledger, the part, and who decides. */
const contributionOptions = {
  ...ledgerOptions,
  json: jsonOption,
  expert: expertOption,
  validators: validatorsOption,
  nats: natsOption("submit to this network's round coordinator instead of deciding here").pipe(Options.optional)
}

export const submitCommand = Command.make(
  "submit",
  {
    ...contributionOptions,
    weights: Options.file("weights").pipe(Options.withDescription("the candidate's weights as safetensors, as `blyan export` writes them")),
    heldOut: Options.file("held-out").pipe(Options.optional, Options.withDescription("the held-out text the local validators draw their batches from (without --nats)"))
  },
  (args) => Effect.flatMap(handlers, (h) => h.submit(args))
).pipe(Command.withDescription("submit improved weights for a part: a Proof-of-Learning round decides them; exit 1 when rejected, with the reason and each validator's figures"))

export const improveCommand = Command.make(
  "improve",
  {
    ...contributionOptions,
    steps: Options.integer("steps").pipe(Options.withDescription("optimiser steps on this part alone")),
    corpus: Options.file("corpus").pipe(Options.withDescription("training text (UTF-8)")),
    heldOut: Options.file("held-out").pipe(Options.optional, Options.withDescription("held-out text for the validators; default: the corpus's last tenth")),
    lr: Options.float("lr").pipe(Options.withDefault(1e-2)),
    seed: Options.integer("seed").pipe(Options.withDefault(0))
  },
  (args) => Effect.flatMap(handlers, (h) => h.improve(args))
).pipe(Command.withDescription("train one part alone on a corpus, then submit it to a Proof-of-Learning round"))
