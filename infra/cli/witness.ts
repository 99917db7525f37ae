import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { natsOption } from "./node.ts"
import { publicKeyOption } from "./options.ts"

const witnessDataOption = Options.text("data").pipe(
  Options.withDescription("the witness's directory: its key, its own log and the heads it co-signed (env BLYAN_WITNESS_DATA)"),
  Options.withFallbackConfig(Config.string("BLYAN_WITNESS_DATA")),
  Options.withDefault("./witness-data")
)
const ledgerKeyOption = publicKeyOption("ledger-key").pipe(
  Options.withDescription("the public key (hex) of the ledger to witness, as `blyan proof head` prints it (default: the one this witness follows, or the first it meets)"),
  Options.optional
)
const intervalOption = Options.integer("interval-ms").pipe(Options.withDescription("how often to fetch the ledger's head"), Options.withDefault(5000))

/** The handler loads only when `witness` runs. */
const handler = Effect.promise(() => import("./witness-handler.ts"))

export const witnessCommand = Command.make(
  "witness",
  { nats: natsOption("the network whose ledger to witness"), data: witnessDataOption, ledgerKey: ledgerKeyOption, intervalMs: intervalOption },
  (args) => Effect.flatMap(handler, (h) => h.witness(args))
).pipe(Command.withDescription("witness a ledger: co-sign each tree head that extends the last one co-signed; record and report a fork"))
