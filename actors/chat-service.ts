/**
 * The network's router, hosted by the process that holds the store: it answers chat requests
 * (`Subjects.chat`) with the model they name (default: the one published last, built-in or
 * imported) by running embeddings, attention and routers here and every expert on the nodes
 * (see `remoteExperts`); it keeps the nodes' latest heartbeats for load-aware choice, bans
 * a node that keeps failing (for a while) or that a spot-check caught (for good, with the
 * evidence), and records each answer's receipts and failures (`InferenceServed`) and the nodes'
 * earnings (`RewardPaid`). `askChat` is a client's side.
 */
import { randomBytes } from "node:crypto"
import { Effect, Either, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import type { BlobStore } from "../domain/ports/blob-store.ts"
import type { ModelRunner } from "../domain/ports/model-runner.ts"
import type { Executor } from "../domain/ports/executor.ts"
import { newEvent } from "../domain/ledger/events.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { makePrng } from "../domain/model/prng.ts"
import { makeExpertModels, type ExpertModel } from "../domain/model/expert-models.ts"
import { expertPart } from "../domain/model/spec.ts"
import type { Receipt } from "../domain/network/receipts.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { ChatRequest } from "../domain/network/chat-request.ts"
import type { NodesState } from "../domain/projections/nodes.ts"
import { chooseModel, type ChosenModel } from "../domain/projections/model.ts"
import { inferenceOwed } from "../domain/rewards/inference.ts"
import { payOwed } from "./rewards.ts"
import { chatWith, type ChatAnswer, type ExpertAttribution, type TokenAttribution } from "./chat.ts"
import { chatFamilyWith, loadFamilyModel, type FamilyModel } from "./family-chat.ts"
import { askJson, serveJson } from "./owner-requests.ts"
import { loadModelOf, type LoadedModel } from "./model-ledger.ts"
import type { Projector } from "./projector.ts"
import { remoteExperts, type ExpertFailure } from "./expert-router.ts"
import { followHeartbeats } from "./live-nodes.ts"

/** Receipts per `InferenceServed` part: each part stays well inside one message. */
const RECEIPTS_PER_PART = 256
/** A replica silent for this many times the usual answer time (and at least the floor) is not waited for alone. */
const HEDGE_FACTOR = 10
const HEDGE_FLOOR_MS = 50

/** An expert's part in a token, with the signed receipt of the node that ran it. */
export type NetworkAttribution = ExpertAttribution & { readonly receipt?: Receipt }

export type NetworkChatAnswer = Omit<ChatAnswer, "experts"> & {
  readonly request: string
  readonly experts: ReadonlyArray<NetworkAttribution>
}

/** A token of a network chat as it is generated: the chat's request id, the byte, and who produced it. */
export type NetworkToken = Omit<TokenAttribution, "experts"> & { readonly request: string; readonly experts: ReadonlyArray<NetworkAttribution> }


export type RouterSettings = {
  /** Deadline of one expert request. */
  readonly timeoutMs: number
  /** Tries per expert call, the first included. */
  readonly attempts: number
  /** Share of expert calls sent to two replicas (BLYAN_SPOTCHECK_RATE). */
  readonly spotCheckRate: number
  /** A node silent for longer is not chosen. */
  readonly staleMs: number
  /** Failures in a row that get a node banned, and for how long. */
  readonly banAfter: number
  readonly banMs: number
  /** Seeds the choice of calls to spot-check. */
  readonly seed: number
}

/** A chat the router could not answer, in words. */
export class ChatFailed extends Schema.TaggedError<ChatFailed>()("ChatFailed", { message: Schema.String }) {}


/**
 * Serve chat until the scope closes, reading the registry and the model off `projector`'s live
 * read models; the router, for answering in this process too (the explorer's chat).
 */
export const serveChat = (settings: RouterSettings, projector: Projector) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const store = yield* EventStore
    const live = yield* followHeartbeats
    const outstanding = new Map<string, number>()
    const failingStreak = new Map<string, number>()
    /** The usual time of an accepted expert answer: a moving average. */
    let usualMs = 0
    const rng = makePrng(settings.seed)
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    // The registry and the models are kept live by the projector: a chat costs nothing of the log's length.
    const cached = new Map<string, { readonly key: number; readonly model: LoadedModel | FamilyModel }>()
    const expertModels = makeExpertModels()
    /** The model as the ledger says now, decoded again only when a block has been appended since (an imported one without its experts). */
    const loaded = (chosen: ChosenModel) =>
      Effect.gen(function* () {
        const state = projector.state().model
        const key = state.versions.size
        const hit = cached.get(chosen.hash)
        if (hit?.key === key) return hit.model
        const model = chosen.kind === "builtin" ? yield* loadModelOf(state) : yield* loadFamilyModel(state, chosen.name, "all but experts")
        cached.set(chosen.hash, { key, model })
        return model
      })

    /** With `onToken`, each token is told with its attribution as it is generated. */
    const answer = (req: ChatRequest, onToken?: (token: NetworkToken) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const request = `chat-${randomBytes(8).toString("hex")}`
        // Everything appended before this chat is in the projector; the chat's own bans apply to its copy.
        yield* projector.awaitSeq((yield* store.head)?.seq ?? -1)
        const nodes: NodesState = new Map([...projector.state().nodes].map(([id, n]) => [id, { ...n }]))
        const receipts = new Map<string, Receipt>()
        const failures: ExpertFailure[] = []
        let calls = 0
        const ban = (node: string, reason: string, until?: number) =>
          Effect.gen(function* () {
            const n = nodes.get(node)
            if (n === undefined || n.status === "banned") return
            Object.assign(n, { status: "banned", bannedUntil: until, banReason: reason })
            yield* store.append(Streams.node(node), [newEvent("NodeBanned", { node, reason, ...(until === undefined ? {} : { until }) })], "any")
          }).pipe(Effect.catchAll((e) => Effect.logError(`the ban of ${node} was not recorded: ${e.message}`)))
        const computeFor = (model: ExpertModel, blocks: ReadonlyMap<string, string>) =>
          remoteExperts(bus, {
            blockOf: (l, e) => blocks.get(expertPart(l, e)),
            nodes: () => nodes,
            live,
            outstanding,
            now,
            staleMs: settings.staleMs,
            width: model.width,
            timeoutMs: settings.timeoutMs,
            attempts: settings.attempts,
            hedgeAfterMs: () => Math.min(settings.timeoutMs, Math.max(HEDGE_FLOOR_MS, HEDGE_FACTOR * usualMs)),
            onLatency: (ms) => void (usualMs = usualMs === 0 ? ms : 0.95 * usualMs + 0.05 * ms),
            requestId: () => `${request}.${calls++}`,
            spotCheck: () => rng.next() < settings.spotCheckRate,
            onAccepted: (r) =>
              Effect.sync(() => {
                receipts.set(r.requestId, r)
                failingStreak.delete(r.node)
              }),
            onFailed: (f) =>
              Effect.gen(function* () {
                failures.push(f)
                const streak = (failingStreak.get(f.node) ?? 0) + 1
                failingStreak.set(f.node, streak)
                if (streak < settings.banAfter) return
                failingStreak.delete(f.node)
                yield* ban(f.node, `failed ${streak} expert requests in a row; the last: ${f.reason}`, now() + settings.banMs)
              }),
            onCheated: (node, evidence) => ban(node, evidence)
          })
        // An expert's answer is accepted, its receipt kept, before the token it helped produce is chosen.
        const withReceipt = (e: ExpertAttribution): NetworkAttribution => {
          const receipt = e.request === undefined ? undefined : receipts.get(e.request)
          return receipt === undefined ? e : { ...e, receipt }
        }
        const options = { ...req, ...(onToken === undefined ? {} : { onToken: (t: TokenAttribution) => onToken({ ...t, request, experts: t.experts.map(withReceipt) }) }) }
        const result = yield* Effect.either(
          Effect.gen(function* () {
            const chosen = yield* Either.mapLeft(chooseModel(projector.state().model, req.model), (message) => new ChatFailed({ message }))
            const model = yield* loaded(chosen)
            const compute = computeFor(expertModels(chosen), model.blocks)
            return "specHash" in model ? yield* chatWith(model, req.prompt, options, compute) : yield* chatFamilyWith(model, req.prompt, options, compute)
          })
        )
        yield* record(request, [...receipts.values()], failures, Either.isRight(result) ? result.right.tokens.length : 0)
        if (Either.isLeft(result)) return yield* new ChatFailed({ message: result.left.message })
        return { ...result.right, request, experts: result.right.experts.map(withReceipt) } satisfies NetworkChatAnswer
      })

    /** The answer's receipts and failures, then what the nodes earned. */
    const record = (request: string, receipts: ReadonlyArray<Receipt>, failures: ReadonlyArray<ExpertFailure>, tokens: number) =>
      Effect.gen(function* () {
        if (receipts.length === 0 && failures.length === 0) return
        const parts = Math.max(1, Math.ceil(receipts.length / RECEIPTS_PER_PART))
        const served = Array.from({ length: parts }, (_, part) => {
          const rs = receipts.slice(part * RECEIPTS_PER_PART, (part + 1) * RECEIPTS_PER_PART)
          const uses = new Map(rs.map((r) => [`${r.layer}/${r.expert}/${r.node}/${r.block}`, { layer: r.layer, expert: r.expert, node: r.node, block: r.block }]))
          return newEvent("InferenceServed", { request, part, tokens, experts: [...uses.values()], receipts: rs, failures: part === 0 ? failures : [] })
        })
        yield* store.append(Streams.inference, served, "any")
        yield* payOwed(inferenceOwed(request, receipts))
      })

    yield* serveJson(Subjects.chat, ChatRequest, (req) => Effect.map(answer(req), (a) => ({ answer: a })))
    const context = yield* Effect.context<BlobStore | EventStore | ModelRunner | Executor>()
    return { answer: (req: ChatRequest, onToken?: (token: NetworkToken) => Effect.Effect<void>) => Effect.provide(answer(req, onToken), context) }
  })

/** The router a process serves, for answering chat in that process too. */
export type Router = Effect.Effect.Success<ReturnType<typeof serveChat>>

/** Ask the network's router to chat; its refusal or failure as ChatFailed. */
export const askChat = (req: ChatRequest, timeoutMs: number) =>
  Effect.map(
    askJson<{ readonly answer: NetworkChatAnswer }, ChatFailed>(Subjects.chat, req, timeoutMs, (reason) => new ChatFailed({ message: reason })),
    (r) => r.answer
  )
