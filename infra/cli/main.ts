import { Command, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { auditCommand, eventsCommand, initCommand, keysCommand } from "./ledger-commands.ts"
import { upCommand } from "./up.ts"
import { chatCommand, exportCommand, trainCommand } from "./model-commands.ts"
import { planCommand } from "./plan-commands.ts"
import { CliFailure } from "./output.ts"

const blyan = Command.make("blyan").pipe(
  Command.withDescription("Blyan: an AI model on an auditable, append-only ledger"),
  Command.withSubcommands([initCommand, upCommand, auditCommand, eventsCommand, keysCommand, chatCommand, trainCommand, exportCommand, planCommand])
)

const cli = Command.run(blyan, { name: "blyan", version: "0.1.0" })

/** Refusals print one line and set the exit code; argument errors were already printed by the parser. */
const program = (argv: ReadonlyArray<string>) =>
  cli(argv).pipe(
    Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = 2))),
    Effect.catchIf(
      (e): e is CliFailure => e instanceof CliFailure,
      (e) =>
        Effect.gen(function* () {
          if (e.json !== undefined && argv.includes("--json")) yield* Console.log(JSON.stringify(e.json, null, 2))
          yield* Console.error(`blyan: ${e.message}`)
          process.exitCode = e.exitCode
        })
    ),
    Effect.provide(NodeContext.layer)
  )

program(process.argv).pipe(NodeRuntime.runMain({ disableErrorReporting: false }))
