import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect } from "effect"
import { Role } from "../../domain/ledger/events.ts"
import { choiceOption, jsonOption, ledgerOptions, publicKeysOption } from "./options.ts"

/** The handlers, with the stores and the replay behind them, load only when one of these commands runs. */
const handlers = Effect.promise(() => import("./ledger-handlers.ts"))

export const initCommand = Command.make("init", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handlers, (h) => h.init(args))).pipe(
  Command.withDescription("create the ledger: the genesis covenant, the model spec and its genesis weights (idempotent)")
)

const trustOption = publicKeysOption("trust").pipe(
  Options.withDescription("the public key (hex) of a ledger whose signed tree heads to hold the log to, and whose contributor registrations to accept, besides this machine's ledger key; repeatable")
)

const witnessOption = Options.text("witness").pipe(
  Options.repeated,
  Options.withDescription("heads witnesses co-signed, to hold the log to as well: a file of notes (a witness's tree-heads.jsonl) or nats://HOST:PORT to poll the witnesses there; repeatable")
)

export const auditCommand = Command.make("audit", { ...ledgerOptions, json: jsonOption, trust: trustOption, witness: witnessOption }, (args) => Effect.flatMap(handlers, (h) => h.audit(args))).pipe(
  Command.withDescription("replay the ledger from genesis and verify every hash, link, schema, stream, signature and blob")
)

const streamOption = Options.text("stream").pipe(Options.optional, Options.withDescription("only this stream"))
const fromOption = Options.integer("from").pipe(Options.withDefault(0), Options.withDescription("first seq to show"))

export const eventsCommand = Command.make("events", { ...ledgerOptions, json: jsonOption, stream: streamOption, from: fromOption }, (args) =>
  Effect.flatMap(handlers, (h) => h.events(args))
).pipe(Command.withDescription("list events of the ledger"))

const roleOption = choiceOption("role", Role.literals)
const labelOption = Options.text("label").pipe(Options.optional)

const keysCreate = Command.make("create", { ...ledgerOptions, json: jsonOption, role: roleOption, label: labelOption }, (args) =>
  Effect.flatMap(handlers, (h) => h.keysCreate(args))
).pipe(Command.withDescription("issue an API key (printed once; only its sha256 is recorded)"))

const keyHashOption = Options.text("key-hash").pipe(
  Options.withDescription("the key's sha256 (64 hex digits), as `keys list` shows it"),
  Options.mapEffect((v) =>
    /^[0-9a-f]{64}$/.test(v)
      ? Effect.succeed(v)
      : // Never echo the value: it may be the key itself, pasted by mistake.
        Effect.fail(
          ValidationError.invalidValue(
            HelpDoc.p("--key-hash must be the key's sha256 as `keys list` shows it (64 lowercase hex digits); the value given is not, and is not repeated here in case it is the key itself")
          )
        )
  )
)

const keysRevoke = Command.make(
  "revoke",
  { ...ledgerOptions, json: jsonOption, reason: Options.text("reason").pipe(Options.optional), keyHash: keyHashOption },
  (args) => Effect.flatMap(handlers, (h) => h.keysRevoke(args))
).pipe(Command.withDescription("revoke an API key by its sha256"))

const keysList = Command.make("list", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handlers, (h) => h.keysList(args))).pipe(
  Command.withDescription("list issued API keys (hashes and roles)")
)

export const keysCommand = Command.make("keys").pipe(
  Command.withSubcommands([keysCreate, keysRevoke, keysList]),
  Command.withDescription("API keys")
)

export const modelsCommand = Command.make("models", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handlers, (h) => h.modelsList(args))).pipe(
  Command.withDescription("list the ledger's models: the built-in one (blyan-moe) and every import, with the one chat and nodes default to")
)

export const nodesCommand = Command.make("nodes", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handlers, (h) => h.nodesList(args))).pipe(
  Command.withDescription("list the network's nodes: status, experts held, requests served, failures and BLY earned")
)

export const balanceCommand = Command.make(
  "balance",
  { ...ledgerOptions, json: jsonOption, address: Args.text({ name: "address" }).pipe(Args.optional) },
  (args) => Effect.flatMap(handlers, (h) => h.balance(args))
).pipe(Command.withDescription("BLY held by an address (a node id or a public key; default: your key in BLYAN_HOME), and the total supply"))

export const transferCommand = Command.make(
  "transfer",
  {
    ...ledgerOptions,
    json: jsonOption,
    to: Options.text("to").pipe(Options.withDescription("the receiving address: a node id or a public key")),
    amount: Options.text("amount").pipe(Options.withDescription("BLY, e.g. 0.5 (up to 18 decimals)")),
    nodeData: Options.text("node-data").pipe(Options.optional, Options.withDescription("send from a node: its data directory (its key)")),
    from: Options.text("from").pipe(Options.optional, Options.withDescription("with --node-data: the node's id"))
  },
  (args) => Effect.flatMap(handlers, (h) => h.transfer(args))
).pipe(Command.withDescription("send BLY, signed with your key (or a node's); a replayed, unsigned or uncovered transfer is refused"))
