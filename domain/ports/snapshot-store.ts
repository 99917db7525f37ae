import { Context, Effect, Either, Option, ParseResult, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"

/** Snapshots are named after their projection; the name is also a file name. */
const SNAPSHOT_NAME = /^[a-z][a-z0-9-]{0,63}$/
export const isSnapshotName = (name: string): boolean => SNAPSHOT_NAME.test(name)

/**
 * A projection's state as a fold of the log up to `seq` left it. It belongs to the log whose
 * envelope at `seq` has `hash` (which, the log being a hash chain, fixes every envelope before
 * it), and to the projection's codec `version`; anything else must not use it.
 */
export const Snapshot = Schema.Struct({
  projection: Schema.String.pipe(Schema.pattern(SNAPSHOT_NAME)),
  version: Schema.Int.pipe(Schema.positive()),
  seq: Schema.Int.pipe(Schema.nonNegative()),
  hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  /** How many events each stream holds up to `seq`: a command's expected revision is read from it. */
  streams: Schema.Record({ key: Schema.String, value: Schema.Int.pipe(Schema.positive()) }),
  /** The state in the projection's codec form. */
  state: Schema.Unknown
})
export type Snapshot = typeof Snapshot.Type

/** A stored snapshot that cannot be read back as one (damaged, foreign, unreadable file). */
export class SnapshotUnreadable extends Schema.TaggedError<SnapshotUnreadable>()("SnapshotUnreadable", {
  projection: Schema.String,
  message: Schema.String
}) {}

/** The snapshot store cannot be used (I/O, permissions); the message names the path where known. */
export class SnapshotStoreFailure extends Schema.TaggedError<SnapshotStoreFailure>()("SnapshotStoreFailure", { message: Schema.String }) {}

export type SnapshotListing = { readonly snapshots: ReadonlyArray<Snapshot>; readonly unreadable: ReadonlyArray<SnapshotUnreadable> }

/**
 * Saved projection states, one per projection: a cache of folds, never a source of truth. What
 * is loaded is checked against the log before use (see `actors/command.ts`) and against a replay
 * from genesis by the audit (see `actors/snapshot-audit.ts`).
 */
export interface SnapshotStoreApi {
  /** The projection's snapshot, none when there is none; a stored one that cannot be read fails. */
  readonly load: (projection: string) => Effect.Effect<Option.Option<Snapshot>, SnapshotUnreadable>
  /** Replace the projection's snapshot, atomically: a reader sees the old one or the new one, whole. */
  readonly save: (snapshot: Snapshot) => Effect.Effect<void, SnapshotStoreFailure>
  readonly list: Effect.Effect<SnapshotListing, SnapshotStoreFailure>
  readonly remove: (projection: string) => Effect.Effect<void, SnapshotStoreFailure>
}

export class SnapshotStore extends Context.Tag("blyan/SnapshotStore")<SnapshotStore, SnapshotStoreApi>() {}

/** A snapshot's stored text: canonical JSON, so one snapshot is always the same bytes. */
export const encodeSnapshot = (s: Snapshot): Either.Either<string, SnapshotStoreFailure> =>
  Either.try({
    try: () => canonicalize(Schema.encodeSync(Snapshot)(s)),
    catch: (e) => new SnapshotStoreFailure({ message: `snapshot ${s.projection} cannot be written: ${String((e as Error).message ?? e)}` })
  })

/** Read a stored text back as the snapshot of `projection`; anything else is unreadable. */
export const decodeSnapshot = (projection: string, text: string): Either.Either<Snapshot, SnapshotUnreadable> => {
  const unreadable = (why: string) => Either.left(new SnapshotUnreadable({ projection, message: `snapshot ${projection} is unreadable: ${why}` }))
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return unreadable(`not JSON (${(e as Error).message})`)
  }
  const decoded = Schema.decodeUnknownEither(Snapshot, { onExcessProperty: "error" })(json)
  if (Either.isLeft(decoded)) return unreadable(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
  if (decoded.right.projection !== projection) return unreadable(`it holds projection ${decoded.right.projection}`)
  return Either.right(decoded.right)
}

/** Refuse a name no snapshot can have, before it reaches a path or a key. */
export const checkSnapshotName = (projection: string): Effect.Effect<void, SnapshotStoreFailure> =>
  isSnapshotName(projection) ? Effect.void : Effect.fail(new SnapshotStoreFailure({ message: `snapshot store: ${JSON.stringify(projection)} is not a snapshot name` }))

/** Load each named snapshot, keeping those that cannot be read apart. */
export const listSnapshots = (
  names: ReadonlyArray<string>,
  load: SnapshotStoreApi["load"]
): Effect.Effect<SnapshotListing> =>
  Effect.map(Effect.forEach(names, (p) => Effect.either(load(p))), (loaded) => ({
    snapshots: loaded.flatMap((r) => (Either.isRight(r) && Option.isSome(r.right) ? [r.right.value] : [])),
    unreadable: loaded.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
  }))
