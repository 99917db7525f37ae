import { Effect } from "effect"
import { checkSnapshotName, decodeSnapshot, encodeSnapshot, listSnapshots, type SnapshotStoreApi } from "../../domain/ports/snapshot-store.ts"

/**
 * Snapshots in memory, for tests. Each is kept as the text a file would hold, so that every load
 * decodes a fresh state, as from a file: a fold that updates its state in place never reaches
 * into the stored one.
 */
export const makeMemorySnapshotStore = (): SnapshotStoreApi => {
  const texts = new Map<string, string>()
  const load = (projection: string) =>
    Effect.suspend(() => {
      const text = texts.get(projection)
      return text === undefined ? Effect.succeedNone : Effect.asSome(decodeSnapshot(projection, text))
    })
  return {
    load,
    save: (snapshot) =>
      Effect.zipRight(
        checkSnapshotName(snapshot.projection),
        Effect.map(encodeSnapshot(snapshot), (text) => void texts.set(snapshot.projection, text))
      ),
    list: Effect.suspend(() => listSnapshots([...texts.keys()].sort(), load)),
    remove: (projection) => Effect.sync(() => void texts.delete(projection))
  }
}
