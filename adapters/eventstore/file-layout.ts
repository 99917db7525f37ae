import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { StoreFailure } from "../../domain/ledger/errors.ts"
import { storeFailure as failure } from "../failure.ts"
import { fsyncPath } from "../durable-write.ts"

/**
 * Where the file store keeps its log: `<dir>/events/`, holding
 *
 *   <first seq, 20 digits>.seg   the segments, in seq order: each starts with the event after the
 *                                previous one's last (file-format.ts)
 *   <first seq, 20 digits>.idx   each segment's index (file-index.ts), derived from it
 *   LOCK                         the single-writer lock (file-lock.ts)
 *
 * A data directory of the previous version holds one segment, `log.seg`: a writer adopts it as
 * `00000000000000000000.seg` on open, a reader reads it where it is.
 */
export const eventsDir = (dir: string) => path.join(dir, "events")

const DIGITS = 20
const SEGMENT_NAME = /^(\d{20})\.seg$/

export const segmentName = (first: number) => `${String(first).padStart(DIGITS, "0")}.seg`
/** The segment whose first event is `first`; the log's first segment by default. */
export const segmentPath = (dir: string, first = 0) => path.join(eventsDir(dir), segmentName(first))
export const indexPath = (dir: string, first: number) => path.join(eventsDir(dir), `${String(first).padStart(DIGITS, "0")}.idx`)
export const legacySegmentPath = (dir: string) => path.join(eventsDir(dir), "log.seg")

export type Segment = {
  /** The seq of its first event (of the next event, while it is empty). */
  readonly first: number
  readonly file: string
  readonly index: string
}

const segmentAt = (dir: string, first: number): Segment => ({ first, file: segmentPath(dir, first), index: indexPath(dir, first) })

/**
 * The segments in `dir`, in order; none when the directory does not exist. A previous version's
 * `log.seg` is the first segment, in place.
 */
export const listSegments = (dir: string): Either.Either<Segment[], StoreFailure> => {
  let names: string[]
  try {
    names = fs.readdirSync(eventsDir(dir))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return Either.right([])
    return Either.left(failure(`cannot list ${eventsDir(dir)}`)(e))
  }
  const firsts = names.flatMap((n) => {
    const m = SEGMENT_NAME.exec(n)
    return m ? [Number(m[1])] : []
  })
  if (firsts.some((f) => !Number.isSafeInteger(f)))
    return Either.left(new StoreFailure({ reason: `${eventsDir(dir)} holds a segment whose name is beyond the largest seq this build handles` }))
  firsts.sort((a, b) => a - b)
  const segments = firsts.map((f) => segmentAt(dir, f))
  if (names.includes("log.seg")) {
    if (segments.length > 0)
      return Either.left(new StoreFailure({ reason: `${eventsDir(dir)} holds both log.seg (the previous layout) and numbered segments; keep one` }))
    return Either.right([{ first: 0, file: legacySegmentPath(dir), index: indexPath(dir, 0) }])
  }
  return Either.right(segments)
}

/**
 * The writer's view of the directory: a previous version's `log.seg` renamed to the first
 * numbered segment (durably, before anything is written after it), and at least one segment.
 */
export const prepareSegments = (dir: string): Effect.Effect<Segment[], StoreFailure> =>
  Effect.gen(function* () {
    const evDir = eventsDir(dir)
    yield* Effect.try({ try: () => fs.mkdirSync(evDir, { recursive: true }), catch: failure(`cannot create ${evDir}`) })
    const found = yield* listSegments(dir)
    const legacy = found.length === 1 && found[0]!.file === legacySegmentPath(dir)
    if (legacy) yield* Effect.logInfo(`event log ${legacySegmentPath(dir)}: adopting it as the first segment, ${segmentPath(dir)}`)
    if (legacy || found.length === 0) {
      const first = segmentAt(dir, 0)
      yield* Effect.try({
        try: () => {
          if (legacy) fs.renameSync(legacySegmentPath(dir), first.file)
          // A new file's directory entry must be durable too, or a crash could lose the whole log.
          else fs.closeSync(fs.openSync(first.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644))
          fsyncPath(evDir)
        },
        catch: failure(`cannot create ${first.file}`)
      })
      return [first]
    }
    return found
  })

/** Create the next segment, empty, with its index header, durably. */
export const createSegment = (dir: string, first: number, indexHeader: Buffer): Segment => {
  const s = segmentAt(dir, first)
  fs.closeSync(fs.openSync(s.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644))
  fs.writeFileSync(s.index, indexHeader)
  fsyncPath(eventsDir(dir))
  return s
}

/** Write all of `bytes` at `position` (a short write is retried, not ignored). */
export const writeAllSync = (fd: number, bytes: Uint8Array, position: number): void => {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done)
}
