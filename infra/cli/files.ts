import { Effect, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
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

/** An output file or directory given on the command line cannot be written; nothing was written. */
export class OutputUnwritable extends Schema.TaggedError<OutputUnwritable>()("OutputUnwritable", { message: Schema.String }) {}

/** Create `dir` and its missing parents one level at a time: Node's recursive mkdir spins forever under /proc. */
const makeDirs = (dir: string) => {
  const missing: string[] = []
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d)
    if (path.dirname(d) === d) break
  }
  for (const d of missing.reverse()) fs.mkdirSync(d)
}

const unwritable = (what: string) => (e: unknown) => {
  const err = e as NodeJS.ErrnoException
  const why = err.code === "EISDIR" ? "it is a directory" : err.code === "ENOTDIR" ? "a part of its path is not a directory" : err.message
  return new OutputUnwritable({ message: `cannot write ${what}: ${why}` })
}

/** Write one output file, creating its directory; a directory or an unwritable path is a clear refusal. */
export const writeOutputFile = (file: string, bytes: Uint8Array | string) =>
  Effect.try({
    try: () => {
      makeDirs(path.dirname(path.resolve(file)))
      fs.writeFileSync(file, bytes)
    },
    catch: unwritable(file)
  })

/** Write files into an output directory, creating it; each entry is a name and its bytes. */
export const writeOutputDir = (dir: string, files: ReadonlyArray<{ readonly name: string; readonly bytes: Uint8Array }>) =>
  Effect.try({
    try: () => {
      makeDirs(dir)
      return files.map(({ name, bytes }) => {
        fs.writeFileSync(path.join(dir, name), bytes)
        return path.join(dir, name)
      })
    },
    catch: unwritable(dir)
  })

/** Text decoded as UTF-8; anything else (a binary file) is refused naming the file. */
export const decodeUtf8 = (file: string, bytes: Uint8Array) =>
  Effect.try({
    try: () => (new TextDecoder("utf-8", { fatal: true }).decode(bytes), bytes),
    catch: () => new CliFailure({ message: `${file} is not UTF-8 text`, exitCode: 1 })
  })

/** A file's bytes, refused naming the file when it cannot be read or is not UTF-8 text. */
export const readUtf8 = (file: string) => Effect.flatMap(readFileBytes(file), (bytes) => decodeUtf8(file, bytes))

/** A file's text (see `readUtf8`). */
export const readText = (file: string) => Effect.map(readUtf8(file), (b) => new TextDecoder().decode(b))
