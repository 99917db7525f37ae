import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect } from "effect"

/** Flag, then BLYAN_DATA, then ./data: every command that opens a store takes it. */
export const dataOption = Options.text("data").pipe(
  Options.withDescription("data directory of the ledger (env BLYAN_DATA)"),
  Options.withFallbackConfig(Config.string("BLYAN_DATA")),
  Options.withDefault("./data")
)

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("machine-readable JSON output"))

/** A flag whose value must be one of `choices`; a wrong value is refused naming the flag. */
export const choiceOption = <const C extends ReadonlyArray<string>>(name: string, choices: C) =>
  Options.text(name).pipe(
    Options.mapEffect((value) =>
      (choices as ReadonlyArray<string>).includes(value)
        ? Effect.succeed(value as C[number])
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be one of ${choices.join(", ")}; got ${JSON.stringify(value)}`)))
    ),
    Options.withDescription(`one of ${choices.join(", ")}`)
  )
