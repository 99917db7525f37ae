import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect, Option } from "effect"

/** Flag, then BLYAN_DATA, then ./data: every command that opens a store takes it. */
export const dataOption = Options.text("data").pipe(
  Options.withDescription("data directory of the ledger (env BLYAN_DATA)"),
  Options.withFallbackConfig(Config.string("BLYAN_DATA")),
  Options.withDefault("./data")
)

/** `--store URL` (env BLYAN_STORE): file:DIR (the default, from --data), nats://HOST:PORT[,…] or esdb://HOST:PORT. */
export const storeOption = Options.text("store").pipe(
  Options.withDescription("the ledger's store: file:DIR (default: --data), nats://HOST:PORT[,HOST:PORT…][?replicas=N] or esdb://HOST:PORT (env BLYAN_STORE)"),
  Options.optional
)

/** The options of every command that opens the ledger; the entry reads the same flags to choose it. */
export const ledgerOptions = { data: dataOption, store: storeOption }

/**
 * The value of `--name V` or `--name=V` in the command line, before any `--`. The ledger is built
 * once at the entry from these; the parser sees the same flags through `ledgerOptions`.
 */
export const globalFlag = (argv: ReadonlyArray<string>, name: string): Option.Option<string> => {
  const flag = `--${name}`
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") break
    if (a === flag && i + 1 < argv.length) return Option.some(argv[i + 1]!)
    if (a.startsWith(`${flag}=`)) return Option.some(a.slice(flag.length + 1))
  }
  return Option.none()
}

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

const PUBLIC_KEY = /^[0-9a-f]{64}$/

const publicKey = (name: string, key: string) =>
  PUBLIC_KEY.test(key) ? Effect.succeed(key) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be a public key of 64 lowercase hex digits; got ${JSON.stringify(key)}`)))

/** `--name HEX`: an ed25519 public key as 64 lowercase hex digits, refused naming the flag otherwise. */
export const publicKeyOption = (name: string) => Options.text(name).pipe(Options.mapEffect((key) => publicKey(name, key)))

/** `--name HEX`, repeatable. */
export const publicKeysOption = (name: string) =>
  Options.text(name).pipe(
    Options.repeated,
    Options.mapEffect((keys) => Effect.forEach(keys, (key) => publicKey(name, key)))
  )
