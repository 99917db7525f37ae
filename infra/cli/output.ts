import { Console, Data, Effect } from "effect"

/** A command's refusal: printed as one clear line on stderr, with a non-zero exit code. */
export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly message: string; readonly exitCode: number; readonly json?: unknown }> {}

export const fail = (message: string, exitCode = 1, json?: unknown) => Effect.fail(new CliFailure({ message, exitCode, json }))

/** Print either the JSON form or the human form of one result. */
export const emit = (json: boolean, value: unknown, human: () => string) =>
  json ? Console.log(JSON.stringify(value, null, 2)) : Console.log(human())

/** Any typed error that carries a message becomes a CLI failure with exit code 1. */
export const orFail = <A, E extends { readonly message: string }, R>(eff: Effect.Effect<A, E, R>) =>
  Effect.mapError(eff, (e) => (e instanceof CliFailure ? e : new CliFailure({ message: e.message, exitCode: 1 })))
