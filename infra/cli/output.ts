import { Console, Effect, Schema } from "effect"

/** A command's own refusal, with its exit code and, for `--json`, what to print on stdout. */
export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  message: Schema.String,
  exitCode: Schema.Int,
  json: Schema.optional(Schema.Unknown)
}) {}

export const fail = (message: string, exitCode = 1, json?: unknown) => Effect.fail(new CliFailure({ message, exitCode, json }))

/** Print either the JSON form or the human form of one result. */
export const emit = (json: boolean, value: unknown, human: () => string) =>
  json ? Console.log(JSON.stringify(value, null, 2)) : Console.log(human())

/**
 * The documented exit codes: 0 ok, 1 refused or invalid input, 2 usage, 3 ledger integrity
 * failure, 4 unavailable (store, lock held, execution provider).
 */
export const ExitCode = { ok: 0, refused: 1, usage: 2, integrity: 3, unavailable: 4 } as const

const byTag: Record<string, number> = {
  StoreSettingInvalid: ExitCode.usage,
  SettingInvalid: ExitCode.usage,
  MalformedEvent: ExitCode.integrity,
  ChainBroken: ExitCode.integrity,
  BlobCorrupted: ExitCode.integrity,
  BlobNotFound: ExitCode.integrity,
  BlobStoreFailure: ExitCode.unavailable,
  TreeHeadStoreFailure: ExitCode.unavailable,
  ExecutionProviderUnavailable: ExitCode.unavailable,
  // Still contended after every retry: another writer keeps moving the stream.
  WrongExpectedRevision: ExitCode.unavailable
}

/** The exit code for a typed error that reached the CLI; a store failure naming a seq is a bad record. */
export const exitCodeOf = (e: { readonly _tag: string }): number => {
  if (e instanceof CliFailure) return e.exitCode
  if (e._tag === "StoreFailure") return (e as { readonly seq?: number }).seq === undefined ? ExitCode.unavailable : ExitCode.integrity
  return byTag[e._tag] ?? ExitCode.refused
}

/** A progress bar on stderr when it is a terminal, a line every tenth of the run otherwise; `note` follows the count. */
export const progressBar = (total: number, label: string, unit: (n: number) => string = String) => {
  const tty = process.stderr.isTTY
  let last = -1
  return {
    step: (done: number, note = "") => {
      const pct = total === 0 ? 100 : Math.floor((done / total) * 100)
      const line = `${unit(done)}/${unit(total)}${note === "" ? "" : ` ${note}`}`
      if (tty) {
        const filled = total === 0 ? 30 : Math.round((done / total) * 30)
        process.stderr.write(`\r${label} [${"#".repeat(filled)}${".".repeat(30 - filled)}] ${line}`)
      } else if (Math.floor(pct / 10) !== last) {
        last = Math.floor(pct / 10)
        process.stderr.write(`${label} ${line}\n`)
      }
    },
    done: () => tty && process.stderr.write("\n")
  }
}
