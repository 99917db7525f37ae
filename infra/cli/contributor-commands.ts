import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { jsonOption, ledgerOptions, publicKeyOption } from "./options.ts"

/** The handlers load only when one of these commands runs. */
const handlers = Effect.promise(() => import("./contributor-handlers.ts"))

const keyOption = publicKeyOption("key").pipe(Options.withDescription("the contributor's public key (hex), as `blyan train` prints it"))

const add = Command.make(
  "add",
  { ...ledgerOptions, json: jsonOption, key: keyOption.pipe(Options.optional, Options.withDescription("default: this machine's contributor key")), label: Options.text("label").pipe(Options.optional) },
  (args) => Effect.flatMap(handlers, (h) => h.add(args))
).pipe(Command.withDescription("register a contributor's key, signed by this machine's ledger key: the ledger accepts blocks only from registered keys"))

const revoke = Command.make(
  "revoke",
  { ...ledgerOptions, json: jsonOption, key: keyOption, reason: Options.text("reason") },
  (args) => Effect.flatMap(handlers, (h) => h.revoke(args))
).pipe(Command.withDescription("stop accepting new blocks from a contributor's key (its blocks so far stay), signed by this machine's ledger key"))

const list = Command.make("list", { ...ledgerOptions, json: jsonOption }, (args) => Effect.flatMap(handlers, (h) => h.list(args))).pipe(
  Command.withDescription("list registered contributors, who registered them and whether they are revoked")
)

export const contributorsCommand = Command.make("contributors").pipe(
  Command.withSubcommands([list, add, revoke]),
  Command.withDescription("the known writers of blocks")
)
