/**
 * The explorer's HTTP server: `ExplorerApi` implemented on the live read models (`Explorer`) and
 * served by Node's HTTP server, with its OpenAPI document at `/openapi.json`.
 */
import { createServer } from "node:http"
import { HttpApiBuilder, HttpApiError, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Stream } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"
import { GENESIS_AT, GENESIS_COVENANT, GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import type { LedgerState } from "../../domain/projections/ledger-state.ts"
import { balanceView, blockView, chainPage, expertHistory, modelView, nodesView, roundsView, roundView } from "../../domain/projections/explorer.ts"
import { PlansProjection } from "../../domain/projections/plans.ts"
import { ExplorerApi } from "./explorer-api.ts"

/** What the explorer reads: the live read models, the seq they have folded, and the log itself. */
export class Explorer extends Context.Tag("blyan/Explorer")<
  Explorer,
  {
    readonly state: () => LedgerState
    readonly position: Effect.Effect<number>
    readonly head: Effect.Effect<Head | undefined, StoreFailure>
    readonly events: (from: number, limit: number) => Effect.Effect<ReadonlyArray<Envelope>, StoreFailure>
  }
>() {}

const DEFAULT_PAGE = 100

const found = <A>(a: A | undefined) => (a === undefined ? Effect.fail(new HttpApiError.NotFound()) : Effect.succeed(a))

const LedgerHandlers = HttpApiBuilder.group(ExplorerApi, "ledger", (handlers) =>
  Effect.gen(function* () {
    const x = yield* Explorer
    return handlers
      .handle("health", () => Effect.orDie(Effect.all({ ok: Effect.succeed(true as const), head: Effect.map(x.head, (h) => h ?? null), projected: x.position })))
      .handle("genesis", () => Effect.succeed({ hash: GENESIS_HASH, at: GENESIS_AT, covenant: GENESIS_COVENANT }))
      .handle("model", () => Effect.sync(() => modelView(x.state())))
      .handle("chain", ({ path, urlParams }) => Effect.sync(() => chainPage(x.state(), path.chain, urlParams.cursor ?? 0, urlParams.limit ?? DEFAULT_PAGE)))
      .handle("block", ({ path }) => found(blockView(x.state(), path.hash)))
      .handle("expertHistory", ({ path }) => found(expertHistory(x.state(), path.name)))
      .handle("events", ({ urlParams }) => {
        const from = urlParams.from ?? 0
        const limit = urlParams.limit ?? DEFAULT_PAGE
        return Effect.orDie(Effect.map(x.events(from, limit + 1), (es) => ({ from, next: es.length > limit ? from + limit : null, events: es.slice(0, limit) })))
      })
  })
)

const NetworkHandlers = HttpApiBuilder.group(ExplorerApi, "network", (handlers) =>
  Effect.gen(function* () {
    const x = yield* Explorer
    return handlers
      .handle("nodes", () => Effect.sync(() => nodesView(x.state())))
      .handle("rounds", () => Effect.sync(() => roundsView(x.state())))
      .handle("round", ({ path }) => found(roundView(x.state(), path.id)))
      .handle("balance", ({ path }) => Effect.sync(() => balanceView(x.state(), path.addr)))
      .handle("plans", () => Effect.sync(() => PlansProjection.view(x.state().plans) as ReadonlyArray<unknown>))
  })
)

/** The API with its handlers, needing `Explorer`. */
export const ExplorerApiLive = HttpApiBuilder.api(ExplorerApi).pipe(Layer.provide(LedgerHandlers), Layer.provide(NetworkHandlers))

/**
 * Serve the explorer on `host:port` (0: any free port) for as long as the scope; the address it
 * listens on.
 */
export const serveExplorer = (options: { readonly host: string; readonly port: number }) =>
  Effect.gen(function* () {
    const server = HttpApiBuilder.serve().pipe(
      Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
      Layer.provide(ExplorerApiLive),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: options.host, port: options.port }))
    )
    const context = yield* Layer.build(server)
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : `unix:${address.path}`
  })

/** The explorer's read side over a live projector and the log. */
export const explorerOf = (projector: { readonly state: () => LedgerState; readonly position: Effect.Effect<number> }, store: { readonly head: Effect.Effect<Head | undefined, StoreFailure>; readonly readAll: (from?: number) => Stream.Stream<Envelope, StoreFailure> }): Context.Tag.Service<Explorer> => ({
  state: projector.state,
  position: projector.position,
  head: store.head,
  events: (from, limit) => Effect.map(Stream.runCollect(Stream.take(store.readAll(from), limit)), (c) => [...c])
})


