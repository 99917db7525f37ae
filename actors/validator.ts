/**
 * A validator on the network. It joins the round coordinator with its key and the hash of its
 * held-out text (again every heartbeat, to stay among those rounds are opened with), follows the
 * log into its own replica, and answers each round's request for its verdict. It takes the round
 * and the candidate from its replica, never from the request; fetches the base model's and the
 * candidate's weights over the bus, each verified by its hash; derives the batches' seed from its
 * replica's envelope at the seq where the round closed; and signs its figures on its own text.
 */
import { Effect, Schedule, Schema, Stream } from "effect"
import { EventStore } from "../domain/ports/event-store.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import type { KeyPair } from "../domain/ledger/signing.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { evaluationSeed } from "../domain/pol/evaluation.ts"
import { RoundsProjection, settingsOf } from "../domain/pol/rounds.ts"
import { EvaluationRequest, signJoin, ValidatorRefused } from "../domain/pol/validator-wire.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import { fetchBlob, fetchModelBlobs } from "./blob-exchange.ts"
import { foldStream } from "./command.ts"
import { followLog, type Replica } from "./log-follower.ts"
import { loadModelOf } from "./model-ledger.ts"
import { askOwner, serveJson } from "./owner-requests.ts"
import { signedVerdict } from "./pol-evaluation.ts"

/** This validator will not give a verdict on what it was asked: the reason, in words. */
export class VerdictRefused extends Schema.TaggedError<VerdictRefused>()("VerdictRefused", { message: Schema.String }) {}

export type ValidatorSettings = {
  readonly key: KeyPair
  readonly apiKey: string
  /** The held-out text this validator draws its batches from: its own, unknown to contributors. */
  readonly heldOut: Uint8Array
  readonly timeoutMs: number
  readonly heartbeatMs: number
  readonly onStatus: (line: string) => void
}

const ValidatorView = sideBySide("validator", { model: ModelProjection, rounds: RoundsProjection })

/** The verdict asked for, from what the replica holds once it has reached the request's seq. */
const verdictOn = (req: EvaluationRequest, s: ValidatorSettings, heldOut: string) =>
  Effect.gen(function* () {
    const replica = yield* EventStore
    const refuse = (reason: string) => new VerdictRefused({ message: `${s.key.publicKey.slice(0, 16)}… gives no verdict on ${req.contribution}: ${reason}` })
    yield* Effect.repeat(replica.head, { schedule: Schedule.spaced("20 millis"), until: (h) => (h?.seq ?? -1) >= req.seq }).pipe(
      Effect.timeoutFail({ duration: `${s.timeoutMs} millis`, onTimeout: () => refuse(`the log has not reached seq ${req.seq} here`) })
    )
    const { state } = yield* foldStream("*", ValidatorView)
    const r = state.rounds.get(req.round)
    const block = r?.contributions.get(req.contribution)
    if (r === undefined || block === undefined || r.closed) return yield* refuse(`round ${req.round} has no open contribution ${req.contribution}`)
    if (!r.opened.validators.includes(s.key.publicKey)) return yield* refuse(`this validator is not one of round ${req.round}'s`)
    if (r.opened.heldOut !== null && r.opened.heldOut !== heldOut) return yield* refuse(`the round draws from held-out text ${r.opened.heldOut}, not this validator's`)
    const [closing] = yield* Stream.runCollect(Stream.take(replica.readAll(req.seq), 1))
    if (closing?.stream !== Streams.round(req.round)) return yield* refuse(`seq ${req.seq} is not an event of round ${req.round}`)
    if (state.model.current.get(r.opened.target)?.block !== r.opened.base) return yield* refuse(`the round's base ${r.opened.base} is no longer current`)
    yield* fetchModelBlobs(state.model, s.timeoutMs)
    const { weights } = yield* loadModelOf(state.model)
    const candidate = yield* decodePart(yield* fetchBlob(block.payload, { timeoutMs: s.timeoutMs }))
    if (candidate.name !== r.opened.target) return yield* refuse(`the candidate holds ${candidate.name}, not ${r.opened.target}`)
    const seed = evaluationSeed(req.round, block.hash, closing.hash)
    const ask = { round: req.round, contribution: req.contribution, seed, base: weights, candidate }
    const verdict = yield* signedVerdict(s.key, ask, s.heldOut, settingsOf(r.opened), r.opened.heldOut === null ? heldOut : undefined)
    s.onStatus(`${verdict.passes ? "pass" : "fail"} on ${req.contribution} in round ${req.round}: improvement ${(verdict.improvement * 100).toFixed(2)}%, better on ${verdict.wins} of ${verdict.batches}`)
    return { verdict }
  }).pipe(Effect.mapError((e) => (e instanceof VerdictRefused ? e : new VerdictRefused({ message: e.message }))))

/**
 * Validate until the scope closes or the follower stops: joined (a refusal fails it), the replica
 * caught up, verdicts answered on this validator's own subject. Needs the bus, a blob store for
 * the weights it fetches, and the model runner.
 */
export const runValidator = (s: ValidatorSettings, replica: Replica) =>
  Effect.gen(function* () {
    const heldOut = sha256Hex(s.heldOut)
    const join = askOwner(Subjects.validatorJoin, signJoin(s.key, heldOut, s.apiKey), s.timeoutMs, (reason) => new ValidatorRefused({ message: reason }))
    yield* join
    const followed = yield* followLog(replica, { timeoutMs: s.timeoutMs })
    yield* serveJson(Subjects.validatorEvaluate(s.key.publicKey), EvaluationRequest, (req) => verdictOn(req, s, heldOut).pipe(Effect.provideService(EventStore, replica)))
    s.onStatus(`joined as ${s.key.publicKey}, held-out text ${heldOut}; log at seq ${followed.head?.seq ?? -1}`)
    // Joining again is the heartbeat: a coordinator that restarted hears of this validator within one.
    yield* Effect.forkScoped(
      join.pipe(
        Effect.catchAll((e) => Effect.sync(() => s.onStatus(`not joined this time: ${e.message}`))),
        Effect.repeat(Schedule.spaced(`${s.heartbeatMs} millis`))
      )
    )
    yield* followed.following
  }).pipe(Effect.scoped)
