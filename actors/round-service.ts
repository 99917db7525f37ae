/**
 * The network's round coordinator, hosted by the process that holds the store: validators join it
 * (`Subjects.validatorJoin`, an API key of role validator), and each contribution that reaches it
 * (`Subjects.roundSubmit`) is decided in a round of its own by the validators heard from lately,
 * each asked over the bus on its own subject. `submitContribution` is the contributor's side.
 */
import { Clock, Effect, Schema } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import type { Bus } from "../domain/ports/bus.ts"
import type { EventStore } from "../domain/ports/event-store.ts"
import type { ModelRunner } from "../domain/ports/model-runner.ts"
import { Catalog, type BlockAppendedData } from "../domain/ledger/events.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { joinProblem, parseJoin, Submission, ValidatorRefused } from "../domain/pol/validator-wire.ts"
import { KeysProjection } from "../domain/projections/keys.ts"
import { fetchBlob, serveBlobsOn } from "./blob-exchange.ts"
import { foldStream } from "./command.ts"
import { askJson, serveJson, serveOwnerRequests } from "./owner-requests.ts"
import { completeRounds, ContributionRefused, runRound, type RoundSettings, type RoundValidators } from "./round-coordinator.ts"
import { RoundReport } from "../domain/pol/report.ts"

export type RoundServiceSettings = RoundSettings & {
  readonly timeoutMs: number
  /** A validator not heard from for this long is left out of new rounds. */
  readonly staleMs: number
}

/** A validator did not answer with a verdict. */
export class VerdictUnanswered extends Schema.TaggedError<VerdictUnanswered>()("VerdictUnanswered", { message: Schema.String }) {}

const VerdictAnswer = Schema.Struct({ verdict: Catalog.PoLEvaluated.schema })

/** `keys` asked over the bus, all at once; each draws from its own held-out text and names it. */
const busValidators = (keys: ReadonlyArray<string>, timeoutMs: number): RoundValidators<VerdictUnanswered, Bus> => ({
  keys,
  heldOut: null,
  concurrency: Math.max(1, keys.length),
  verdict: (validator, a) =>
    askJson<object, VerdictUnanswered>(Subjects.validatorEvaluate(validator), { round: a.round, contribution: a.contribution, seq: a.seq }, timeoutMs, (reason) => new VerdictUnanswered({ message: reason })).pipe(
      Effect.flatMap(Schema.decodeUnknown(VerdictAnswer)),
      Effect.map((answer) => answer.verdict),
      Effect.mapError((e) => (e instanceof VerdictUnanswered ? e : new VerdictUnanswered({ message: `not a verdict: ${e.message}` })))
    )
})

/**
 * The coordinator's desk: validators join it, and each contribution (a signed block and its
 * weights) is decided at it, one round at a time, by the validators heard from lately. Made once
 * the rounds a stopped coordinator left open are finished. Needs the bus, the store, the blobs and
 * the model runner.
 */
export const makeRoundDesk = (s: RoundServiceSettings) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const context = yield* Effect.context<Bus | EventStore | BlobStore | ModelRunner>()
    // A round a stopped coordinator left open is finished as its log implies before any other starts.
    yield* completeRounds
    /** Each joined validator's key, with when it was last heard from (ms). */
    const joined = new Map<string, number>()
    const oneAtATime = yield* Effect.makeSemaphore(1)
    const join = (text: string) =>
      Effect.gen(function* () {
        const j = yield* parseJoin(text)
        const { state } = yield* foldStream(Streams.keys, KeysProjection)
        const problem = joinProblem(state, j)
        if (problem !== undefined) return yield* ValidatorRefused.because(problem)
        joined.set(j.publicKey, yield* Clock.currentTimeMillis)
      }).pipe(Effect.provide(context))
    const decide = (block: BlockAppendedData, bytes: Uint8Array) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const live = [...joined].filter(([, at]) => now - at <= s.staleMs).map(([key]) => key).sort()
        const candidate = yield* decodePart(bytes)
        yield* blobs.put(bytes)
        return yield* runRound(block, candidate, busValidators(live, s.deadlineMs), s)
      }).pipe(
        oneAtATime.withPermits(1),
        Effect.mapError((e) => (e instanceof ContributionRefused ? e : new ContributionRefused({ message: e.message }))),
        Effect.provide(context)
      )
    return { join, decide }
  })

export type RoundDesk = Effect.Effect.Success<ReturnType<typeof makeRoundDesk>>

/** Answer joins and contributions on the bus with `desk` until the scope closes; a contribution's weights are fetched from its contributor. */
export const serveRounds = (desk: RoundDesk, timeoutMs: number) =>
  Effect.gen(function* () {
    yield* serveOwnerRequests(Subjects.validatorJoin, "ValidatorRefused", desk.join)
    yield* serveJson(Subjects.roundSubmit, Submission, ({ block }) =>
      Effect.flatMap(fetchBlob(block.payload, { timeoutMs, subject: Subjects.contributionBlob(block.payload) }), (bytes) => desk.decide(block, bytes))
    )
  })

/**
 * Submit `block` with its weights (`bytes`) to the network's round coordinator and wait up to
 * `waitMs` for the decision: the report, or the coordinator's refusal as `ContributionRefused`.
 * The weights are served from here while the round runs.
 */
export const submitContribution = (block: BlockAppendedData, bytes: Uint8Array, waitMs: number) =>
  Effect.gen(function* () {
    yield* serveBlobsOn(Subjects.contributionBlob(block.payload), (hash) =>
      hash === block.payload ? Effect.succeed(bytes) : Effect.fail(new ContributionRefused({ message: `only ${block.payload} is served here` }))
    )
    const answer = yield* askJson<object, ContributionRefused>(Subjects.roundSubmit, { block }, waitMs, (reason) => new ContributionRefused({ message: reason }))
    return yield* Schema.decodeUnknown(RoundReport)(answer).pipe(Effect.mapError((e) => new ContributionRefused({ message: `the coordinator's answer is not a report: ${e.message}` })))
  }).pipe(Effect.scoped)
