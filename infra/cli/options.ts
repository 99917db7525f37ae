import { Options } from "@effect/cli"
import { Config } from "effect"

/** Flag, then BLYAN_DATA, then ./data: every command that opens a store takes it. */
export const dataOption = Options.text("data").pipe(
  Options.withDescription("data directory of the ledger (env BLYAN_DATA)"),
  Options.withFallbackConfig(Config.string("BLYAN_DATA")),
  Options.withDefault("./data")
)

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("machine-readable JSON output"))
