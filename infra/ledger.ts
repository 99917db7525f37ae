import * as path from "node:path"
import { Layer } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"

/** The embedded default: the file event store and file blob store under one data directory. */
export const fileLedger = (dataDir: string, opts: { readonly readOnly?: boolean } = {}) => {
  const dir = path.resolve(dataDir)
  return Layer.merge(
    Layer.scoped(EventStore, makeFileEventStore(dir, { readOnly: opts.readOnly ?? false })),
    Layer.effect(BlobStore, makeFileBlobStore(dir))
  )
}
