import * as path from "node:path"
import { Context, Effect, Either, ExecutionStrategy, Exit, Layer, Schema, Scope, Stream } from "effect"
import { EventStore, type EventStoreApi } from "../domain/ports/event-store.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { StoreFailure } from "../domain/ledger/errors.ts"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { makeEsdbEventStore } from "../adapters/eventstore/esdb.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"
import { initLedger } from "../actors/genesis.ts"
import type { ModelSpec } from "../domain/model/spec.ts"

/**
 * Where the ledger lives. `file:DIR` is the embedded default (`--data DIR` is its shorthand);
 * `esdb://…` keeps the log in EventStoreDB and the blobs under the data directory.
 */
export type StoreLocation =
  | { readonly scheme: "file"; readonly dir: string }
  | { readonly scheme: "esdb"; readonly url: string; readonly blobDir: string }

/** `--store` / `BLYAN_STORE` names no store this build can open. */
export class StoreSettingInvalid extends Schema.TaggedError<StoreSettingInvalid>()("StoreSettingInvalid", { message: Schema.String }) {}

/** The store URL, if given, else the data directory: flags before environment before defaults. */
export const parseStoreLocation = (store: string | undefined, data: string): Either.Either<StoreLocation, StoreSettingInvalid> => {
  const invalid = (why: string) => Either.left(new StoreSettingInvalid({ message: `invalid --store (BLYAN_STORE) ${JSON.stringify(store)}: ${why}` }))
  if (store === undefined) return Either.right({ scheme: "file", dir: path.resolve(data) })
  if (store.startsWith("file:")) {
    const dir = store.slice("file:".length).replace(/^\/\/(?=\/)/, "")
    return dir.length === 0 ? invalid("file: needs a directory, e.g. file:./data") : Either.right({ scheme: "file", dir: path.resolve(dir) })
  }
  if (/^esdb(\+discover)?:\/\/./.test(store)) return Either.right({ scheme: "esdb", url: store, blobDir: path.resolve(data) })
  if (store.startsWith("nats://")) return invalid("JetStream (nats://) stores are not available in this version; use file:DIR or esdb://HOST:PORT")
  return invalid("unknown scheme; use file:DIR or esdb://HOST:PORT")
}

export const describeLocation = (loc: StoreLocation): string => (loc.scheme === "file" ? loc.dir : loc.url)

/**
 * What a command may do beyond reading and appending: only `init` and `up` create a ledger, and
 * `up` holds it as the writer for as long as it runs. Every other command finds the ledger there
 * or fails naming where it looked.
 */
export class LedgerAccess extends Context.Tag("blyan/LedgerAccess")<
  LedgerAccess,
  {
    readonly location: string
    /** Open as the writer (taking the store's writer lock), creating the ledger when `create` allows. */
    readonly openForWriting: (create: boolean) => Effect.Effect<void, StoreFailure>
  }
>() {}

const openEvents = (loc: StoreLocation, writer: boolean) =>
  loc.scheme === "file" ? makeFileEventStore(loc.dir, { readOnly: !writer }) : makeEsdbEventStore(loc.url, { readOnly: !writer })

type Opened = { readonly store: EventStoreApi; readonly writer: boolean; readonly scope: Scope.CloseableScope }

/**
 * The event store, opened on first use: read-only for reads (so audits run beside a writer), then
 * reopened as the writer on the first append, whose expected revision guards against anything
 * that changed in between. A ledger with no genesis is "not there" unless the caller may create it.
 */
const lazyEventStore = (loc: StoreLocation) =>
  Effect.gen(function* () {
    const layerScope = yield* Effect.scope
    const gate = yield* Effect.makeSemaphore(1)
    const where = describeLocation(loc)
    const missing = new StoreFailure({ reason: `no ledger at ${where}: run \`blyan init\` there first, or name another with --data/--store` })
    let opened: Opened | undefined

    const openIn = (writer: boolean) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
        const store = yield* Effect.onError(Scope.extend(openEvents(loc, writer), scope), (cause) => Scope.close(scope, Exit.failCause(cause)))
        return { store, writer, scope } satisfies Opened
      })
    const close = (o: Opened) => Scope.close(o.scope, Exit.void)
    const ensureExists = (o: Opened) => Effect.flatMap(o.store.head, (h) => (h === undefined ? Effect.zipRight(close(o), Effect.fail(missing)) : Effect.succeed(o)))

    const open = (writer: boolean, create: boolean) =>
      gate.withPermits(1)(
        Effect.gen(function* () {
          if (opened && (opened.writer || !writer)) return opened.store
          if (!create) {
            // Reads and appends need a ledger that is there; a reader already open has checked.
            const reader = opened ?? (yield* ensureExists(yield* openIn(false)))
            if (!writer) return (opened = reader).store
            yield* close(reader)
          } else if (opened) yield* close(opened)
          opened = undefined
          opened = yield* openIn(true)
          return opened.store
        })
      )

    const read = open(false, false)
    const api: EventStoreApi = {
      append: (stream, events, expected) => Effect.flatMap(open(true, false), (s) => s.append(stream, events, expected)),
      read: (stream) => Effect.flatMap(read, (s) => s.read(stream)),
      readAll: (fromSeq) => Stream.unwrap(Effect.map(read, (s) => s.readAll(fromSeq))),
      subscribe: (fromSeq) => Stream.unwrap(Effect.map(read, (s) => s.subscribe(fromSeq))),
      head: Effect.flatMap(read, (s) => s.head)
    }
    const access = { location: where, openForWriting: (create: boolean) => Effect.asVoid(open(true, create)) }
    return { api, access }
  })

/** The ledger a command works on, built from configuration once, at the CLI's entry. Nothing opens until used. */
export const ledgerLayer = (loc: StoreLocation): Layer.Layer<EventStore | BlobStore | LedgerAccess> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const { api, access } = yield* lazyEventStore(loc)
      const blobs = yield* makeFileBlobStore(loc.scheme === "file" ? loc.dir : loc.blobDir)
      return Context.make(EventStore, api).pipe(Context.add(BlobStore, blobs), Context.add(LedgerAccess, access))
    })
  )

/** Open the ledger as its writer, creating it if needed, and make it ready (`init` and `up`). */
export const createLedger = (spec: ModelSpec) =>
  Effect.gen(function* () {
    const access = yield* LedgerAccess
    yield* access.openForWriting(true)
    const r = yield* initLedger(spec)
    const head = yield* (yield* EventStore).head
    return { ...r, head, location: access.location }
  })
