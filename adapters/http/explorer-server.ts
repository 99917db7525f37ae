/**
 * The explorer's HTTP server: `ExplorerApi` implemented on the live read models (`Explorer`) and
 * served by Node's HTTP server, with its OpenAPI document at `/openapi.json`.
 */
import { randomInt } from "node:crypto"
import { createServer } from "node:http"
import * as path from "node:path"
import { HttpApiBuilder, HttpApiError, HttpServer, HttpServerRequest, HttpServerResponse, type HttpApp } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Context, Effect, Layer, Option, Redacted, Stream } from "effect"
import type { Envelope, Head } from "../../domain/ledger/envelope.ts"
import type { BlobCorrupted, BlobNotFound, BlobStoreApi, BlobStoreFailure } from "../../domain/ports/blob-store.ts"
import type { EventStoreApi } from "../../domain/ports/event-store.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"
import { GENESIS_AT, GENESIS_COVENANT, GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import type { LedgerState } from "../../domain/projections/ledger-state.ts"
import { balanceView, blockView, chainPage, expertHistory, modelView, nodesView, roundsView, roundView } from "../../domain/projections/explorer.ts"
import { PlansProjection } from "../../domain/projections/plans.ts"
import { ContributionRefusal, ContributorKey, ExplorerApi } from "./explorer-api.ts"
import type { RoundReport } from "../../domain/pol/report.ts"
import type { BlockAppendedData } from "../../domain/ledger/events.ts"
import type { ChatRequest } from "../../domain/network/chat-request.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { makeMetrics, type Metrics } from "./metrics.ts"

/** What the explorer reads: the live read models, the seq they have folded, and the log itself. */
export class Explorer extends Context.Tag("blyan/Explorer")<
  Explorer,
  {
    readonly state: () => LedgerState
    readonly position: Effect.Effect<number>
    readonly head: Effect.Effect<Head | undefined, StoreFailure>
    readonly events: (from: number, limit: number) => Effect.Effect<ReadonlyArray<Envelope>, StoreFailure>
    /** The envelopes from `from` on, then each one as it is appended. */
    readonly follow: (from: number) => Stream.Stream<Envelope, StoreFailure>
    /** A block's payload bytes, verified against their hash. */
    readonly payload: (hash: string) => Effect.Effect<Uint8Array, BlobNotFound | BlobCorrupted | BlobStoreFailure>
    readonly metrics: Metrics
    /** Decide a contribution in a round: the report, or why it cannot enter one. */
    readonly contribute: (block: BlockAppendedData, weights: Uint8Array) => Effect.Effect<RoundReport, { readonly message: string }>
    /** Answer a chat, telling each token as it is generated: the request id its receipts are recorded under, or why it failed. */
    readonly chat: (
      request: ChatRequest,
      onToken: (token: StreamedToken) => Effect.Effect<void>
    ) => Effect.Effect<{ readonly request: string; readonly model: string; readonly text: string; readonly tokens: ReadonlyArray<number> }, { readonly message: string }>
  }
>() {}

/** A generated token (with the text it adds, for a model with a tokenizer) and, per layer, the experts that produced it: gate weight, block, and the node and request that ran it. */
type StreamedToken = {
  readonly index: number
  readonly token: number
  readonly text?: string
  readonly experts: ReadonlyArray<{ readonly layer: number; readonly expert: number; readonly weight: number; readonly block: string; readonly node?: string; readonly request?: string }>
}

const DEFAULT_PAGE = 100
const MAX_BODY_BYTES = 8 * 1024 * 1024
const encoder = new TextEncoder()

/** One server-sent event, with its id when it has one. */
const sse = (event: string, data: unknown, id?: number) => encoder.encode(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
const sseResponse = (frames: Stream.Stream<Uint8Array, unknown>) => HttpServerResponse.stream(frames, { contentType: "text/event-stream", headers: { "cache-control": "no-cache" } })

const found = <A>(a: A | undefined) => (a === undefined ? Effect.fail(new HttpApiError.NotFound()) : Effect.succeed(a))

const SystemHandlers = HttpApiBuilder.group(ExplorerApi, "system", (handlers) =>
  Effect.gen(function* () {
    const x = yield* Explorer
    return handlers
      .handle("health", () => Effect.orDie(Effect.all({ ok: Effect.succeed(true as const), head: Effect.map(x.head, (h) => h ?? null), projected: x.position })))
      .handle("metrics", () => Effect.promise(() => x.metrics.text()))
  })
)

const LedgerHandlers = HttpApiBuilder.group(ExplorerApi, "ledger", (handlers) =>
  Effect.gen(function* () {
    const x = yield* Explorer
    return handlers
      .handle("genesis", () => Effect.succeed({ hash: GENESIS_HASH, at: GENESIS_AT, covenant: GENESIS_COVENANT }))
      .handle("model", () => Effect.sync(() => modelView(x.state())))
      .handle("chain", ({ path, urlParams }) => Effect.sync(() => chainPage(x.state(), path.chain, urlParams.cursor ?? 0, urlParams.limit ?? DEFAULT_PAGE)))
      .handle("block", ({ path }) => found(blockView(x.state(), path.hash)))
      .handle("payload", ({ path }) =>
        Effect.flatMap(found(blockView(x.state(), path.hash)), (b) => Effect.orDie(x.payload(b.payload)))
      )
      .handle("expertHistory", ({ path }) => found(expertHistory(x.state(), path.name)))
      .handle("events", ({ urlParams }) => {
        const from = urlParams.from ?? 0
        const limit = urlParams.limit ?? DEFAULT_PAGE
        return Effect.orDie(Effect.map(x.events(from, limit + 1), (es) => ({ from, next: es.length > limit ? from + limit : null, events: es.slice(0, limit) })))
      })
      .handleRaw("live", ({ urlParams }) =>
        Effect.gen(function* () {
          // By default, only what is appended from now on.
          const from = urlParams.from ?? ((yield* Effect.orDie(x.head))?.seq ?? -1) + 1
          // A comment first: the client hears at once that it is listening, and from where.
          const frames = Stream.concat(
            Stream.make(encoder.encode(`: from seq ${from}\n\n`)),
            x.follow(from).pipe(Stream.map((e) => sse("envelope", e, e.seq)))
          )
          return sseResponse(frames)
        })
      )
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

const ChatHandlers = HttpApiBuilder.group(ExplorerApi, "chat", (handlers) =>
  Effect.gen(function* () {
    const x = yield* Explorer
    return handlers.handle("chat", ({ payload }) =>
      Effect.sync(() => {
        const request = { ...payload, seed: payload.seed ?? randomInt(2 ** 31) }
        const frames = Stream.asyncScoped<Uint8Array>((emit) => {
          // The receipts travel on the log under the request id: each token carries who ran it, not the signatures.
          const token = (t: StreamedToken) =>
            Effect.promise(() =>
              emit.single(sse("token", { index: t.index, token: t.token, ...(t.text === undefined ? {} : { text: t.text }), experts: t.experts.map(({ layer, expert, weight, block, node, request }) => ({ layer, expert, weight, block, node, request })) }))
            )
          const answer = x.chat(request, token).pipe(
            Effect.matchEffect({
              onFailure: (e) => Effect.promise(() => emit.single(sse("failed", { message: e.message }))),
              onSuccess: (a) => Effect.promise(() => emit.single(sse("done", { request: a.request, model: a.model, seed: request.seed, tokens: a.tokens.length, text: a.text })))
            }),
            Effect.ensuring(Effect.promise(() => emit.end()))
          )
          // A client gone mid-answer does not cut it short: the nodes' receipts and earnings are still recorded.
          // Detached rather than uninterruptible: inside, deadlines and hedges must still cancel what they race.
          return Effect.asVoid(Effect.forkDaemon(answer))
        })
        return sseResponse(frames)
      })
    )
  })
)

/** A contributor's API key, checked against the live key registry: unknown or revoked is 401, another role 403. */
const ContributorKeyLive = Layer.effect(
  ContributorKey,
  Effect.map(Explorer, (x) => ({
    bearer: (token: Redacted.Redacted<string>) => {
      const key = x.state().keys.get(sha256Hex(Redacted.value(token)))
      if (key === undefined || key.revoked) return Effect.fail(new HttpApiError.Unauthorized())
      return key.role === "contributor" ? Effect.void : Effect.fail(new HttpApiError.Forbidden())
    }
  }))
)

const ContributeHandlers = HttpApiBuilder.group(ExplorerApi, "contribute", (handlers) =>
  Effect.gen(function* () {
    const x = yield* Explorer
    return handlers.handle("contribute", ({ payload }) =>
      x.contribute(payload.block, new Uint8Array(Buffer.from(payload.weights, "base64"))).pipe(Effect.mapError((e) => new ContributionRefusal({ message: e.message })))
    )
  })
).pipe(Layer.provide(ContributorKeyLive))

/** The API with its handlers, needing `Explorer`. */
export const ExplorerApiLive = HttpApiBuilder.api(ExplorerApi).pipe(
  Layer.provide(SystemHandlers),
  Layer.provide(LedgerHandlers),
  Layer.provide(NetworkHandlers),
  Layer.provide(ChatHandlers),
  Layer.provide(ContributeHandlers)
)

/** The page and its script, from `dir` (the build's `dist/web`), at `/` and `/app.js`. */
const pageRoutes = (dir: string) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.all([
      router.get("/", HttpServerResponse.file(path.join(dir, "index.html"), { contentType: "text/html; charset=utf-8" })),
      router.get("/app.js", HttpServerResponse.file(path.join(dir, "app.js"), { contentType: "text/javascript; charset=utf-8" }))
    ])
  )

/**
 * Serve the explorer (the API, and the page from `page`) on `host:port` (0: any free port) for as
 * long as the scope; the address it listens on.
 */
export const serveExplorer = (options: { readonly host: string; readonly port: number; readonly page: string }) =>
  Effect.gen(function* () {
    const { metrics } = yield* Explorer
    // Every request is counted and timed, by route, whatever it answered.
    const measured = (app: HttpApp.Default) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const start = performance.now()
        // The request's URL is a path: any base parses it.
        const observe = (status: number) => metrics.observe(new URL(request.url, "http://localhost").pathname, status, (performance.now() - start) / 1000)
        return yield* app.pipe(
          // A body larger than any contribution of the built-in model (a part is under 1 MiB) is refused before it is read whole.
          HttpServerRequest.withMaxBodySize(Option.some(MAX_BODY_BYTES)),
          Effect.tap((response) => observe(response.status)),
          // A path no route takes fails here (the server answers it 404); anything else failing is a 500.
          Effect.tapErrorCause((cause) => Effect.sync(() => observe(Option.exists(Cause.failureOption(cause), (e) => (e as { _tag?: string })._tag === "RouteNotFound") ? 404 : 500)))
        )
      })
    const server = HttpApiBuilder.serve(measured).pipe(
      Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
      Layer.provide(pageRoutes(options.page)),
      Layer.provide(ExplorerApiLive),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: options.host, port: options.port }))
    )
    const context = yield* Layer.build(server)
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : `unix:${address.path}`
  })

/** The explorer's read side over a live projector and the log. */
export const explorerOf = (
  projector: { readonly state: () => LedgerState; readonly position: Effect.Effect<number> },
  store: EventStoreApi,
  blobs: BlobStoreApi,
  network: Pick<Context.Tag.Service<Explorer>, "contribute" | "chat">
): Context.Tag.Service<Explorer> => ({
  ...network,
  state: projector.state,
  position: projector.position,
  head: store.head,
  events: (from, limit) => Effect.map(Stream.runCollect(Stream.take(store.readAll(from), limit)), (c) => [...c]),
  follow: store.subscribe,
  payload: blobs.get,
  metrics: makeMetrics({ state: projector.state, projected: () => Effect.runSync(projector.position) })
})


