import { Effect, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import { CliFailure } from "./output.ts"

/** A file's bytes; an unreadable file is a bad argument (exit 2) naming the file. */
export const readFileBytes = (file: string) =>
  Effect.try({ try: () => new Uint8Array(fs.readFileSync(file)), catch: (e) => new CliFailure({ message: `cannot read ${file}: ${(e as Error).message}`, exitCode: 2 }) })

/** A JSON file decoded by `schema`; bad JSON or a wrong shape is a bad argument naming the file and the path in it. */
export const readJsonFile = <A, I>(file: string, schema: Schema.Schema<A, I>) =>
  Effect.gen(function* () {
    const text = new TextDecoder().decode(yield* readFileBytes(file))
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => new CliFailure({ message: `${file} is not JSON: ${(e as Error).message}`, exitCode: 2 }) })
    return yield* Either.mapLeft(Schema.decodeUnknownEither(schema)(json, { onExcessProperty: "error" }), (e) =>
      new CliFailure({ message: `${file} is not a valid file of this kind:\n${ParseResult.TreeFormatter.formatErrorSync(e)}`, exitCode: 2 })
    )
  })
