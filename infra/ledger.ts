import * as path from "node:path"
import { Context, Effect, Either, ExecutionStrategy, Exit, Layer, Schema, Scope, Stream } from "effect"
import { EventStore, type EventStoreApi } from "../domain/ports/event-store.ts"
import { BlobStore, BlobStoreFailure, type BlobStoreApi } from "../domain/ports/blob-store.ts"
import { StoreFailure } from "../domain/ledger/errors.ts"
import { makeFileEventStore } from "../adapters/eventstore/file.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"
import { SnapshotStore } from "../domain/ports/snapshot-store.ts"
import { makeFileSnapshotStore } from "../adapters/snapshots/file.ts"
import { makeFileTreeHeadStore } from "../adapters/tree-heads/file.ts"
import { TreeHeadStore } from "../domain/ports/tree-head-store.ts"
import { homeConfig, setting } from "./config.ts"
import { localKey } from "./identity.ts"
import { ledgerKeyName } from "../domain/ledger/tree-head.ts"
import * as fs from "node:fs"
import type { ModelSpec } from "../domain/model/spec.ts"

/**
 * Where the ledger lives. `file:DIR` is the embedded default (`--data DIR` is its shorthand);
 * `esdb://…` keeps the log in EventStoreDB and the blobs under the data directory;
 * `nats://HOST:PORT[,HOST:PORT…][?replicas=N&stream=NAME&bucket=NAME]` keeps the log in a
 * JetStream stream and the blobs in a JetStream Object Store bucket, for ledgers that many
 * machines write.
 */
export type StoreLocation =
  | { readonly scheme: "file"; readonly dir: string; readonly segmentBytes?: number }
  | { readonly scheme: "esdb"; readonly url: string; readonly blobDir: string }
  | NatsLocation

export type NatsLocation = {
  readonly scheme: "nats"
  readonly url: string
  readonly servers: ReadonlyArray<string>
  readonly replicas: number
  readonly stream: string
  readonly bucket: string
  readonly dataDir: string
}

/** `--store` / `BLYAN_STORE` names no store this build can open. */
export class StoreSettingInvalid extends Schema.TaggedError<StoreSettingInvalid>()("StoreSettingInvalid", { message: Schema.String }) {}

/** The store URL, if given, else the data directory: flags before environment before defaults. */
export const parseStoreLocation = (store: string | undefined, data: string): Either.Either<StoreLocation, StoreSettingInvalid> => {
  const invalidSetting = (why: string) => new StoreSettingInvalid({ message: `invalid --store (BLYAN_STORE) ${JSON.stringify(store)}: ${why}` })
  const invalid = (why: string) => Either.left(invalidSetting(why))
  if (store === undefined) return Either.right({ scheme: "file", dir: path.resolve(data) })
  if (store.startsWith("file:")) {
    const dir = store.slice("file:".length).replace(/^\/\/(?=\/)/, "")
    return dir.length === 0 ? invalid("file: needs a directory, e.g. file:./data") : Either.right({ scheme: "file", dir: path.resolve(dir) })
  }
  if (/^esdb(\+discover)?:\/\/./.test(store)) return Either.right({ scheme: "esdb", url: store, blobDir: path.resolve(data) })
  if (store.startsWith("nats://")) return Either.mapLeft(parseNatsLocation(store, data), invalidSetting)
  return invalid("unknown scheme; use file:DIR, nats://HOST:PORT or esdb://HOST:PORT")
}

/** A server as `host[:port]` (names, IPv4, or IPv6 in brackets); no credentials, which would end up in messages. */
const NATS_SERVER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/
/** What JetStream accepts as a stream or bucket name, and safe in a subject. */
const JETSTREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/
const NATS_DEFAULTS = { replicas: "1", stream: "BLYAN_LEDGER", bucket: "blyan-blobs" }

/** `nats://h1:4222,h2:4222?replicas=3`: the servers, and the replication and names used when the stream and bucket are created. */
const parseNatsLocation = (store: string, data: string): Either.Either<NatsLocation, string> => {
  const rest = store.slice("nats://".length)
  const q = rest.indexOf("?")
  const servers = natsServers(q < 0 ? rest : rest.slice(0, q))
  if (Either.isLeft(servers)) return Either.left(servers.left)
  const params = new URLSearchParams(q < 0 ? "" : rest.slice(q + 1))
  const unknown = [...params.keys()].find((k) => !(k in NATS_DEFAULTS))
  if (unknown !== undefined) return Either.left(`unknown option ${JSON.stringify(unknown)}; nats:// takes replicas, stream and bucket`)
  const get = (k: keyof typeof NATS_DEFAULTS) => params.get(k) ?? NATS_DEFAULTS[k]
  if (!/^[1-5]$/.test(get("replicas"))) return Either.left(`replicas must be 1 to 5 (JetStream's limit), not ${JSON.stringify(get("replicas"))}`)
  for (const k of ["stream", "bucket"] as const)
    if (!JETSTREAM_NAME.test(get(k))) return Either.left(`${k} must be 1 to 64 letters, digits, _ or -, not ${JSON.stringify(get(k))}`)
  return Either.right({ scheme: "nats", url: store, servers: servers.right, replicas: Number(get("replicas")), stream: get("stream"), bucket: get("bucket"), dataDir: path.resolve(data) })
}

/** Comma-separated `host[:port]` servers (each may repeat the `nats://` scheme), as `nats://host:port` URLs. */
const natsServers = (list: string): Either.Either<string[], string> => {
  const servers = list.split(",").map((s) => s.replace(/^nats:\/\//, ""))
  const bad = servers.find((s) => {
    const m = NATS_SERVER.exec(s)
    const port = Number(m?.[1] ?? 4222)
    return m === null || port < 1 || port > 65535
  })
  return bad !== undefined
    ? Either.left(`${JSON.stringify(bad)} is not a NATS server as host:port, e.g. nats://127.0.0.1:4222,10.0.0.2:4222`)
    : Either.right(servers.map((s) => `nats://${s}`))
}

/** The network's bus (`--nats` / `BLYAN_NATS`): `nats://HOST:PORT[,HOST:PORT…]`, no options. */
export const parseNatsBus = (url: string): Either.Either<string[], string> =>
  url.startsWith("nats://") ? natsServers(url.slice("nats://".length)) : Either.left(`${JSON.stringify(url)} is not a NATS URL; use nats://HOST:PORT[,HOST:PORT…]`)

/** `BLYAN_SEGMENT_BYTES`: the size at which the file store starts a new segment, for a file location. */
export const withSegmentBytes = (loc: StoreLocation, raw: string | undefined): Either.Either<StoreLocation, StoreSettingInvalid> => {
  if (raw === undefined || loc.scheme !== "file") return Either.right(loc)
  const bytes = /^[1-9][0-9]{0,15}$/.test(raw.trim()) ? Number(raw.trim()) : NaN
  return Number.isSafeInteger(bytes)
    ? Either.right({ ...loc, segmentBytes: bytes })
    : Either.left(new StoreSettingInvalid({ message: `invalid BLYAN_SEGMENT_BYTES ${JSON.stringify(raw)}: a positive whole number of bytes, e.g. 268435456` }))
}

export const describeLocation = (loc: StoreLocation): string => (loc.scheme === "file" ? loc.dir : loc.url)

/** The data directory that goes with a location: the ledger itself, or what stays local beside a network store. */
const dataDirOf = (loc: StoreLocation): string => (loc.scheme === "file" ? loc.dir : loc.scheme === "esdb" ? loc.blobDir : loc.dataDir)

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

/** Open the event store, as its writer or read-only, for the scope. */
type OpenEvents = (writer: boolean) => Effect.Effect<EventStoreApi, StoreFailure, Scope.Scope>

/** A network store's client loads only when that store is chosen: commands on a file ledger never pay for it. */
const openEvents =
  (loc: Exclude<StoreLocation, NatsLocation>): OpenEvents =>
  (writer) =>
    loc.scheme === "file"
      ? makeFileEventStore(loc.dir, { readOnly: !writer, segmentBytes: loc.segmentBytes })
      : Effect.flatMap(Effect.promise(() => import("../adapters/eventstore/esdb.ts")), (esdb) => esdb.makeEsdbEventStore(loc.url, { readOnly: !writer }))

/** `open`, run until it first succeeds; every later call shares what it opened. */
const openOnce = <A, E>(open: Effect.Effect<A, E>) =>
  Effect.map(Effect.makeSemaphore(1), (gate) => {
    let opened: { readonly value: A } | undefined
    return gate.withPermits(1)(Effect.suspend(() => (opened ? Effect.succeed(opened.value) : Effect.tap(open, (value) => void (opened = { value })))))
  })

/** A blob store opened on its first use. */
const lazyBlobStore = (open: Effect.Effect<BlobStoreApi, BlobStoreFailure>): BlobStoreApi => ({
  put: (bytes) => Effect.flatMap(open, (s) => s.put(bytes)),
  get: (hash) => Effect.flatMap(open, (s) => s.get(hash)),
  verify: (hash) => Effect.flatMap(open, (s) => s.verify(hash)),
  has: (hash) => Effect.flatMap(open, (s) => s.has(hash)),
  list: Effect.flatMap(open, (s) => s.list),
  prune: (keep, graceMs) => Effect.flatMap(open, (s) => s.prune(keep, graceMs))
})

/**
 * JetStream: one connection, made on first use, serves the log and the blobs. There is no writer
 * lock (many writers are the point), so a reader is the same store without appends.
 */
const jetStreamStores = (loc: NatsLocation) =>
  Effect.gen(function* () {
    // A scope made before any store's: the connection closes after the stores that use it.
    const connectionScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const connection = yield* openOnce(
      Effect.flatMap(Effect.promise(() => import("../adapters/eventstore/jetstream-connection.ts")), (m) =>
        Scope.extend(m.connectJetStream(loc.servers), connectionScope)
      )
    )
    const events: OpenEvents = (writer) =>
      Effect.flatMap(Effect.zip(connection, Effect.promise(() => import("../adapters/eventstore/jetstream.ts"))), ([conn, m]) =>
        m.makeJetStreamEventStore(conn, { stream: loc.stream, replicas: loc.replicas, readOnly: !writer })
      )
    const blobs = yield* openOnce(
      Effect.flatMap(
        Effect.zip(
          Effect.mapError(connection, (e) => new BlobStoreFailure({ message: `blob store: ${e.message}` })),
          Effect.promise(() => import("../adapters/blobs/jetstream.ts"))
        ),
        ([conn, m]) => m.makeJetStreamBlobStore(conn, { bucket: loc.bucket, replicas: loc.replicas })
      )
    )
    return { openEvents: events, blobs: lazyBlobStore(blobs) }
  })

type Opened = { readonly store: EventStoreApi; readonly writer: boolean; readonly scope: Scope.CloseableScope }

/**
 * The event store, opened on first use: read-only for reads (so audits run beside a writer), then
 * reopened as the writer on the first append, whose expected revision guards against anything
 * that changed in between. A ledger with no genesis is "not there" unless the caller may create it.
 */
const lazyEventStore = (where: string, openEvents: OpenEvents) =>
  Effect.gen(function* () {
    const layerScope = yield* Effect.scope
    const gate = yield* Effect.makeSemaphore(1)
    const missing = new StoreFailure({ reason: `no ledger at ${where}: run \`blyan init\` there first, or name another with --data/--store` })
    let opened: Opened | undefined

    const openIn = (writer: boolean) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
        const store = yield* Effect.onError(Scope.extend(openEvents(writer), scope), (cause) => Scope.close(scope, Exit.failCause(cause)))
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
export const ledgerLayer = (loc: StoreLocation): Layer.Layer<EventStore | BlobStore | LedgerAccess | SnapshotStore | TreeHeadStore> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const stores = loc.scheme === "nats" ? yield* jetStreamStores(loc) : { openEvents: openEvents(loc), blobs: yield* makeFileBlobStore(dataDirOf(loc)) }
      const { api, access } = yield* lazyEventStore(describeLocation(loc), stores.openEvents)
      return Context.make(EventStore, api).pipe(
        Context.add(BlobStore, stores.blobs),
        Context.add(LedgerAccess, access),
        // Projection snapshots stay in the data directory whatever holds the log.
        Context.add(SnapshotStore, makeFileSnapshotStore(dataDirOf(loc))),
        // So do its signed tree heads.
        Context.add(TreeHeadStore, makeFileTreeHeadStore(dataDirOf(loc)))
      )
    })
  )

/** The key this machine signs its ledgers' tree heads with (`<home>/ledger.key`), created on first use. */
export const ledgerKey = Effect.flatMap(setting(homeConfig), (home) => localKey(home, "ledger"))

/** This machine's ledger key if it has one (never created here), and where it is or would be. */
export const existingLedgerKey = Effect.gen(function* () {
  const home = yield* setting(homeConfig)
  const file = path.join(home, "ledger.key")
  return { file, key: fs.existsSync(file) ? yield* localKey(home, "ledger") : undefined }
})

/** The keys whose tree heads and registrations audit trusts: this machine's ledger key, if it has one. */
export const trustedLedgerKeys = Effect.map(existingLedgerKey, ({ key }) => (key === undefined ? [] : [{ name: ledgerKeyName(key.publicKey), publicKey: key.publicKey }]))

/**
 * Open the ledger as its writer, creating it if needed, and make it ready (`init` and `up`). The
 * caller signs the tree head it starts from, with the tree it keeps (`up`) or one read from the log.
 */
export const createLedger = (spec: ModelSpec) =>
  Effect.gen(function* () {
    const access = yield* LedgerAccess
    yield* access.openForWriting(true)
    // The genesis model's code loads only for the commands that create a ledger.
    const { initLedger } = yield* Effect.promise(() => import("../actors/genesis.ts"))
    const r = yield* initLedger(spec)
    const head = yield* (yield* EventStore).head
    return { ...r, head, location: access.location }
  })
