/**
 * The explorer's HTTP API, as one value: the server (`explorer-server.ts`), the typed client of
 * the tests and the OpenAPI document all derive from it. Every request part has a schema, so a
 * malformed one is a 400 naming what is wrong; an id nobody knows is a 404. Reads are public.
 */
import { HttpApi, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { BlockAppendedData, Covenant } from "../../domain/ledger/events.ts"
import { ModelSpec } from "../../domain/model/spec.ts"
import { NodeView } from "../../domain/projections/nodes.ts"
import { RoundReport, Verdict } from "../../domain/pol/report.ts"
import { ChatRequest } from "../../domain/network/chat-request.ts"

const Hash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/), Schema.annotations({ identifier: "Hash", description: "a sha256, 64 lowercase hex digits" }))
const Seq = Schema.Int.pipe(Schema.nonNegative())
/** A page's size: 1 to 1000 items. */
const Limit = Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))
const Cursor = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

export const Health = Schema.Struct({ ok: Schema.Literal(true), head: Schema.NullOr(Schema.Struct({ seq: Seq, hash: Hash })), projected: Schema.Int })
export const Genesis = Schema.Struct({ hash: Hash, at: Schema.String, covenant: Covenant })
export const ModelView = Schema.Struct({
  spec: Schema.NullOr(Schema.Struct({ hash: Hash, spec: ModelSpec })),
  /** Every model by name (the built-in one as blyan-moe): its family, shape and the hash of its spec. */
  models: Schema.Array(
    Schema.Struct({ name: Schema.String, family: Schema.String, hash: Hash, layers: Schema.Int, experts: Schema.Int, topK: Schema.Int, latest: Schema.Boolean })
  ),
  /** The model chat answers with unless asked for another: the one published last. */
  latest: Schema.NullOr(Schema.String),
  parts: Schema.Array(Schema.Struct({ name: Schema.String, block: Hash, payload: Hash }))
})
export const BlockView = Schema.Struct({ ...BlockAppendedData.fields, seq: Seq, at: Schema.String })
export const ChainAEntryView = Schema.Struct({ seq: Seq, type: Schema.String, hash: Hash, at: Schema.String })
export const ChainPage = Schema.Struct({
  chain: Schema.Literal("A", "B"),
  total: Schema.Int,
  /** The cursor of the next page, null at the end. */
  next: Schema.NullOr(Schema.Int),
  items: Schema.Array(Schema.Union(ChainAEntryView, BlockView))
})
export const ExpertHistory = Schema.Struct({
  name: Schema.String,
  current: Schema.NullOr(Hash),
  versions: Schema.Array(Schema.Struct({ block: Hash, seq: Seq, reason: Schema.String, dependsOn: Schema.Array(Hash), contributor: Schema.String, at: Schema.String }))
})
export const EventsPage = Schema.Struct({ from: Seq, next: Schema.NullOr(Seq), events: Schema.Array(Schema.Unknown) })
const RoundSummary = Schema.Struct({ round: Schema.String, target: Schema.String, base: Hash, contributions: Schema.Int, accepted: Schema.NullOr(Schema.String), closed: Schema.Boolean })
export const RoundView = Schema.Struct({
  round: Schema.String,
  target: Schema.String,
  base: Hash,
  epsilon: Schema.Number,
  minWinShare: Schema.Number,
  batches: Schema.Int,
  validators: Schema.Array(Schema.String),
  contributions: Schema.Array(
    Schema.Struct({
      contribution: Schema.String,
      block: Hash,
      contributor: Schema.String,
      outcome: Schema.Literal("accepted", "rejected", "undecided"),
      reason: Schema.NullOr(Schema.String),
      verdicts: Schema.Array(Verdict)
    })
  ),
  closed: Schema.Boolean
})
export const BalanceView = Schema.Struct({ address: Schema.String, units: Schema.String, supply: Schema.String })
export const PlansView = Schema.Array(Schema.Unknown)

const hashParam = HttpApiSchema.param("hash", Hash)
const idParam = HttpApiSchema.param("id", Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)))

/** The server itself: whether it is up and how far its read models are, and its metrics. */
export class SystemGroup extends HttpApiGroup.make("system")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Health))
  .add(HttpApiEndpoint.get("metrics", "/metrics").addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))) {}

/** The ledger, as its projections see it. */
export class LedgerGroup extends HttpApiGroup.make("ledger")
  .add(HttpApiEndpoint.get("genesis", "/api/genesis").addSuccess(Genesis))
  .add(HttpApiEndpoint.get("model", "/api/model").addSuccess(ModelView))
  .add(
    HttpApiEndpoint.get("chain")`/api/chains/${HttpApiSchema.param("chain", Schema.Literal("A", "B"))}/blocks`
      .setUrlParams(Schema.Struct({ cursor: Schema.optional(Cursor), limit: Schema.optional(Limit) }))
      .addSuccess(ChainPage)
  )
  .add(HttpApiEndpoint.get("block")`/api/blocks/${hashParam}`.addSuccess(BlockView).addError(HttpApiError.NotFound))
  .add(
    HttpApiEndpoint.get("payload")`/api/blocks/${hashParam}/payload`
      .addSuccess(HttpApiSchema.Uint8Array({ contentType: "application/octet-stream" }))
      .addError(HttpApiError.NotFound)
  )
  .add(
    HttpApiEndpoint.get("expertHistory")`/api/experts/${HttpApiSchema.param("name", Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.-]{1,128}$/)))}/history`
      .addSuccess(ExpertHistory)
      .addError(HttpApiError.NotFound)
  )
  .add(
    HttpApiEndpoint.get("events", "/api/events")
      .setUrlParams(Schema.Struct({ from: Schema.optional(Cursor), limit: Schema.optional(Limit) }))
      .addSuccess(EventsPage)
  )
  .add(
    // Server-sent events: one `envelope` event per envelope appended, its id the seq, its data the envelope as stored.
    HttpApiEndpoint.get("live", "/api/live")
      .setUrlParams(Schema.Struct({ from: Schema.optional(Cursor) }))
      .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
  ) {}

/** The network: its nodes, its rounds, balances and plans. */
export class NetworkGroup extends HttpApiGroup.make("network")
  .add(HttpApiEndpoint.get("nodes", "/api/nodes").addSuccess(Schema.Array(NodeView)))
  .add(HttpApiEndpoint.get("rounds", "/api/rounds").addSuccess(Schema.Array(RoundSummary)))
  .add(HttpApiEndpoint.get("round")`/api/rounds/${idParam}`.addSuccess(RoundView).addError(HttpApiError.NotFound))
  .add(HttpApiEndpoint.get("balance")`/api/balances/${HttpApiSchema.param("addr", Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)))}`.addSuccess(BalanceView))
  .add(HttpApiEndpoint.get("plans", "/api/plans").addSuccess(PlansView)) {}

/** A write: `Authorization: Bearer <API key>` of role contributor. */
export class ContributorKey extends HttpApiMiddleware.Tag<ContributorKey>()("ContributorKey", {
  failure: Schema.Union(HttpApiError.Unauthorized, HttpApiError.Forbidden),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** The round refused the contribution before deciding it (stale base, bad signature, …): the reason, in words. */
export class ContributionRefusal extends Schema.TaggedError<ContributionRefusal>()("ContributionRefusal", { message: Schema.String }, HttpApiSchema.annotations({ status: 422 })) {}

export const Contribution = Schema.Struct({
  /** The candidate's block, signed by its contributor on the part's current block. */
  block: BlockAppendedData,
  /** The candidate's weights (safetensors), base64: they must hash to the block's payload. */
  weights: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9+/]*={0,2}$/))
})

/** Contributions: decided in a round by the network's validators, the report returned. */
export class ContributeGroup extends HttpApiGroup.make("contribute")
  .add(HttpApiEndpoint.post("contribute", "/api/contributions").setPayload(Contribution).addSuccess(RoundReport).addError(ContributionRefusal))
  .middleware(ContributorKey) {}

/** A chat: the prompt, and how to sample (64 tokens at temperature 0.8 and a fresh seed unless given). */
export const ChatBody = Schema.Struct({
  prompt: ChatRequest.fields.prompt,
  maxTokens: Schema.optionalWith(ChatRequest.fields.maxTokens, { default: () => 64 }),
  temperature: Schema.optionalWith(ChatRequest.fields.temperature, { default: () => 0.8 }),
  seed: Schema.optional(ChatRequest.fields.seed),
  model: ChatRequest.fields.model
})

/**
 * Chat with the network's current model, answered by its router as chat over the bus is: public,
 * like reads. Server-sent events: a `token` per generated byte with, per layer, the experts that
 * produced it (gate weight, block, and the node and request that ran it), then `done` with the
 * request id (its receipts are on the log under it) or `failed` with the reason.
 */
export class ChatGroup extends HttpApiGroup.make("chat").add(
  HttpApiEndpoint.post("chat", "/api/chat").setPayload(ChatBody).addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
) {}

export class ExplorerApi extends HttpApi.make("blyan").add(SystemGroup).add(LedgerGroup).add(NetworkGroup).add(ChatGroup).add(ContributeGroup).annotate(OpenApi.Title, "Blyan explorer") {}
