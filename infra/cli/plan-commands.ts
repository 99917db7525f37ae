import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { jsonOption, ledgerOptions } from "./options.ts"

/** The handlers, with the partitioner and the plan schemas behind them, load only when a plan command runs. */
const handlers = Effect.promise(() => import("./plan-handlers.ts"))

const clusterOption = Options.text("cluster").pipe(
  Options.optional,
  Options.withDescription("cluster JSON ({ layers?, devices }) to check against instead of the ledger's nodes; layers default to the ledger's model")
)

const optimize = Command.make(
  "optimize",
  { ...ledgerOptions, json: jsonOption, input: Options.text("input").pipe(Options.withDescription("{ layers: [{ cost, memory }], devices: [{ id, speed, memory }] }")) },
  (args) => Effect.flatMap(handlers, (h) => h.optimize(args))
).pipe(Command.withDescription("the exact partition of the layers over the devices: contiguous stages, memory respected, smallest bottleneck"))

const schedule = Command.make("schedule", { json: jsonOption, stages: Options.integer("stages"), microbatches: Options.integer("microbatches") }, (args) =>
  Effect.flatMap(handlers, (h) => h.schedule(args))
).pipe(Command.withDescription("the 1F1B op order of every stage"))

const snapshot = Command.make(
  "snapshot",
  {
    json: jsonOption,
    epoch: Options.text("epoch"),
    round: Options.text("round"),
    stages: Options.text("stages").pipe(Options.repeated, Options.withDescription("node:start:end, inclusive layers, e.g. n1:0:11 n2:12:23")),
    more: Args.text({ name: "stage" }).pipe(Args.repeated),
    zero1: Options.boolean("zero1").pipe(Options.withDescription("shard optimizer state across data-parallel replicas")),
    actCkpt: Options.boolean("act-ckpt").pipe(Options.withDescription("checkpoint activations, recompute in backward")),
    planId: Options.text("plan-id").pipe(Options.optional, Options.withDescription("default: derived from the plan's content")),
    out: Options.text("out").pipe(Options.optional, Options.withDescription("write the plan here instead of printing it"))
  },
  (args) => Effect.flatMap(handlers, (h) => h.snapshot(args))
).pipe(Command.withDescription("write a plan from stages given on the command line (not recorded; see validate and promote)"))

const fileOption = Options.text("file").pipe(Options.withDescription("a plan JSON file, as `plan snapshot` writes it"))

const validate = Command.make("validate", { ...ledgerOptions, json: jsonOption, file: fileOption, cluster: clusterOption }, (args) =>
  Effect.flatMap(handlers, (h) => h.validate(args))
).pipe(Command.withDescription("check a plan: layers covered once, in order, on distinct known devices that fit"))

const promote = Command.make("promote", { ...ledgerOptions, json: jsonOption, file: fileOption, cluster: clusterOption }, (args) =>
  Effect.flatMap(handlers, (h) => h.promote(args))
).pipe(Command.withDescription("validate a plan and record it: promoted on its epoch, frozen on chain A"))

const memory = Command.make(
  "memory",
  {
    ...ledgerOptions,
    json: jsonOption,
    file: fileOption,
    cluster: clusterOption,
    microbatches: Options.integer("microbatches"),
    tokens: Options.integer("tokens").pipe(Options.optional, Options.withDescription("tokens per microbatch (default: the model's context)")),
    dataParallel: Options.integer("data-parallel").pipe(Options.withDefault(1), Options.withDescription("replicas of every stage"))
  },
  (args) => Effect.flatMap(handlers, (h) => h.memory(args))
).pipe(Command.withDescription("which stages need ZeRO-1 or activation checkpointing to train the ledger's model under 1F1B"))

const show = Command.make("show", { ...ledgerOptions, json: jsonOption, id: Args.text({ name: "plan-id" }) }, (args) => Effect.flatMap(handlers, (h) => h.show(args))).pipe(
  Command.withDescription("one recorded plan")
)

const list = Command.make("list", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handlers, (h) => h.list(args))).pipe(
  Command.withDescription("every recorded plan, oldest first")
)

export const planCommand = Command.make("plan").pipe(
  Command.withSubcommands([optimize, schedule, snapshot, validate, promote, memory, show, list]),
  Command.withDescription("pipeline plans: optimize, schedule, snapshot, validate, promote, memory, show, list")
)
