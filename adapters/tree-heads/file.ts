import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { TreeHeadStoreFailure, type TreeHeadStoreApi } from "../../domain/ports/tree-head-store.ts"
import { fsyncPath } from "../durable-write.ts"

/** The notes of a tree-heads file's text: one JSON string a line; any other line is skipped. */
export const notesOfLines = (text: string): ReadonlyArray<string> =>
  text.split("\n").flatMap((line) => {
    try {
      const note: unknown = JSON.parse(line)
      return typeof note === "string" ? [note] : []
    } catch {
      return []
    }
  })

/**
 * Tree heads in `<dir>/tree-heads.jsonl`, one JSON string (the note) per line, appended and
 * synced. A line a crash cut short is not a note and is skipped on reading.
 */
export const makeFileTreeHeadStore = (dir: string): TreeHeadStoreApi => {
  const file = path.join(dir, "tree-heads.jsonl")
  const failure = (what: string) => (e: unknown) => new TreeHeadStoreFailure({ message: `${what} ${file}: ${(e as Error).message}` })
  return {
    append: (note) =>
      Effect.try({
        try: () => {
          const created = !fs.existsSync(file)
          fs.mkdirSync(dir, { recursive: true })
          fs.appendFileSync(file, `${JSON.stringify(note)}\n`)
          fsyncPath(file, "r+")
          if (created) fsyncPath(dir)
        },
        catch: failure("cannot append to")
      }),
    all: Effect.try({
      try: () => {
        if (!fs.existsSync(file)) return []
        return notesOfLines(fs.readFileSync(file, "utf8"))
      },
      catch: failure("cannot read")
    })
  }
}
