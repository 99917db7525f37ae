import { Effect } from "effect"
import { makeMemorySnapshotStore } from "../../../adapters/snapshots/memory.ts"
import { snapshotStoreContract } from "../../contract/snapshot-store.ts"

snapshotStoreContract("memory", () => Effect.sync(makeMemorySnapshotStore))
