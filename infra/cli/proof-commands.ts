import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { jsonOption, ledgerOptions } from "./options.ts"

/** The handlers (the store behind them) load only when one of these commands runs. */
const handlers = Effect.promise(() => import("./proof-handlers.ts"))

const sizeOption = Options.integer("size").pipe(Options.optional, Options.withDescription("the tree's size in events (default: the whole log)"))

const inclusion = Command.make("inclusion", { ...ledgerOptions, json: jsonOption, seq: Options.integer("seq"), size: sizeOption }, (args) =>
  Effect.flatMap(handlers, (h) => h.inclusion(args))
).pipe(Command.withDescription("the proof that the event at --seq is in the log's Merkle tree (RFC 9162), as JSON"))

const consistency = Command.make(
  "consistency",
  { ...ledgerOptions, json: jsonOption, from: Options.integer("from"), to: Options.integer("to").pipe(Options.optional, Options.withDescription("default: the whole log")) },
  (args) => Effect.flatMap(handlers, (h) => h.consistency(args))
).pipe(Command.withDescription("the proof that the log's first --from events are a prefix of its first --to, as JSON"))

const head = Command.make("head", { ...ledgerOptions }, () => Effect.flatMap(handlers, (h) => h.head())).pipe(
  Command.withDescription("the latest tree head this machine's ledger key signed for the log, as its signed note")
)

export const proofCommand = Command.make("proof").pipe(Command.withSubcommands([inclusion, consistency, head]), Command.withDescription("Merkle proofs about the log, and its signed tree head"))

export const verifyCommand = Command.make(
  "verify",
  {
    json: jsonOption,
    proof: Options.file("proof").pipe(Options.optional, Options.withDescription("a proof `blyan proof` printed")),
    answer: Options.file("answer").pipe(Options.optional, Options.withDescription("an answer `blyan chat --prove --json` printed: every block it names must be proved on the log (with --key)")),
    root: Options.text("root").pipe(Options.optional, Options.withDescription("the tree root (hex) the proof must end at")),
    head: Options.file("head").pipe(Options.optional, Options.withDescription("a signed tree head (`blyan proof head`) the proof must end at: its size and root")),
    key: Options.text("key").pipe(Options.optional, Options.withDescription("with --head or --answer: the public key (hex) of the ledger that signed the head"))
  },
  (args) => Effect.flatMap(handlers, (h) => h.verify(args))
).pipe(Command.withDescription("check a proof, or a proved answer, offline, without the log; exit 3 if it does not hold"))
