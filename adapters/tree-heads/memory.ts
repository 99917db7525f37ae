import { Effect } from "effect"
import type { TreeHeadStoreApi } from "../../domain/ports/tree-head-store.ts"

/** Tree heads in memory, for tests. */
export const makeMemoryTreeHeadStore = (): TreeHeadStoreApi => {
  const notes: string[] = []
  return { append: (note) => Effect.sync(() => void notes.push(note)), all: Effect.sync(() => [...notes]) }
}
