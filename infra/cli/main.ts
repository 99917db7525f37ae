import { Command, ValidationError } from "@effect/cli"
import { NodeFileSystem, NodePath, NodeRuntime, NodeTerminal } from "@effect/platform-node"
import { Cause, Config, Console, Effect, Either, Layer, Logger, Option } from "effect"
import { validatorCommand } from "./validator.ts"
import { auditCommand, balanceCommand, eventsCommand, initCommand, keysCommand, modelsCommand, nodesCommand, transferCommand } from "./ledger-commands.ts"
import { nodeCommand } from "./node.ts"
import { witnessCommand } from "./witness.ts"
import { improveCommand, submitCommand } from "./pol-commands.ts"
import { contributorsCommand } from "./contributor-commands.ts"
import { proofCommand, verifyCommand } from "./proof-commands.ts"
import { upCommand } from "./up.ts"
import { chatCommand, exportCommand, importCommand, trainCommand } from "./model-commands.ts"
import { planCommand } from "./plan-commands.ts"
import { CliFailure, ExitCode, exitCodeOf } from "./output.ts"
import { globalFlag } from "./options.ts"

const blyan = Command.make("blyan").pipe(
  Command.withDescription("Blyan: an AI model on an auditable, append-only ledger"),
  Command.withSubcommands([initCommand, upCommand, nodeCommand, validatorCommand, witnessCommand, modelsCommand, nodesCommand, auditCommand, eventsCommand, proofCommand, verifyCommand, keysCommand, contributorsCommand, balanceCommand, transferCommand, chatCommand, trainCommand, submitCommand, improveCommand, importCommand, exportCommand, planCommand])
)

/** A typed failure: one line on stderr, its JSON form on stdout under `--json`, and its exit code. */
const report = (argv: ReadonlyArray<string>) => (error: unknown) =>
  Effect.gen(function* () {
    const e = typeof error === "object" && error !== null && "_tag" in error ? (error as { readonly _tag: string; readonly message: string }) : { _tag: "Error", message: String(error) }
    const code = exitCodeOf(e)
    if (argv.includes("--json")) {
      const json = e instanceof CliFailure && e.json !== undefined ? e.json : { ok: false, error: e._tag, message: e.message, exitCode: code }
      yield* Console.log(JSON.stringify(json, null, 2))
    }
    yield* Console.error(`blyan: ${e.message}`)
    process.exitCode = code
  })

/**
 * The ledger is chosen once, here, from `--store`/`BLYAN_STORE` or `--data`/`BLYAN_DATA`; every
 * command that opens a store declares the same flags, so the parser validates and documents them.
 * It is built when a command runs, not for `--help`, and its module (the stores) loads only then.
 */
const ledgerFromArgs = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { ledgerLayer, parseStoreLocation, withSegmentBytes } = yield* Effect.promise(() => import("../ledger.ts"))
    const store = globalFlag(argv, "store")
    const data = globalFlag(argv, "data")
    const envStore = yield* Config.option(Config.string("BLYAN_STORE"))
    const envData = yield* Config.option(Config.string("BLYAN_DATA"))
    const segmentBytes = yield* Config.option(Config.string("BLYAN_SEGMENT_BYTES"))
    const location = Either.flatMap(
      parseStoreLocation(Option.getOrUndefined(Option.orElse(store, () => envStore)), Option.getOrElse(Option.orElse(data, () => envData), () => "./data")),
      (loc) => withSegmentBytes(loc, Option.getOrUndefined(segmentBytes))
    )
    return Either.match(location, { onLeft: (e) => Layer.fail(e), onRight: ledgerLayer })
  }).pipe(Effect.orDie)

/** Log lines (warnings such as a torn tail cut or a dead writer's lock) go to stderr, never into stdout's results. */
const stderrLogger = Logger.make(({ logLevel, message, cause }) => {
  const text = [...(Array.isArray(message) ? message : [message]).map(String), ...(Cause.isEmpty(cause) ? [] : [Cause.pretty(cause)])].join(" ")
  process.stderr.write(`blyan: ${logLevel.label.toLowerCase()}: ${text}\n`)
})

const program = (argv: ReadonlyArray<string>) =>
  Command.run(blyan.pipe(Command.provide(Layer.unwrapEffect(ledgerFromArgs(argv)))), { name: "blyan", version: "0.1.0" })(argv).pipe(
    Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = ExitCode.usage))),
    Effect.catchAll(report(argv)),
    // What the CLI needs of the platform, not all of NodeContext (whose process and worker layers load modules at start).
    Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer, Logger.replace(Logger.defaultLogger, stderrLogger)))
  )

// A reader that stops early (`blyan events --json | head`) is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0)
  throw e
})

program(process.argv).pipe(NodeRuntime.runMain({ disableErrorReporting: false, disablePrettyLogger: true }))
