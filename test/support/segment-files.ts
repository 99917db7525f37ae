import * as fs from "node:fs"
import * as path from "node:path"
import { eventsDir } from "../../adapters/eventstore/file.ts"

/** The files of a file store's log, in seq order: its segments, or its indexes. */
export const segmentFiles = (dir: string, ext: "seg" | "idx" = "seg"): string[] =>
  fs
    .readdirSync(eventsDir(dir))
    .filter((n) => n.endsWith(`.${ext}`))
    .sort()
    .map((n) => path.join(eventsDir(dir), n))

export const lastSegment = (dir: string): string => segmentFiles(dir).at(-1)!

/** The bytes of the whole log, segment after segment: what the store's events are stored as. */
export const logBytes = (dir: string): Buffer => Buffer.concat(segmentFiles(dir).map((f) => fs.readFileSync(f)))

/** Every file of the log directory and its bytes, to compare one state of it with another. */
export const snapshotFiles = (dir: string): Map<string, Buffer> =>
  new Map(
    fs
      .readdirSync(eventsDir(dir))
      .filter((n) => n.endsWith(".seg") || n.endsWith(".idx"))
      .sort()
      .map((n) => [n, fs.readFileSync(path.join(eventsDir(dir), n))] as const)
  )
