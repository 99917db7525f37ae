/**
 * A Proof-of-Learning round run to its decision in this process, with local validators: the round
 * opened (signed by the ledger key), the candidate submitted, the checks before evaluation, each
 * validator's signed verdict on batches drawn with a seed fixed by the log's head at the round's
 * close, the decision of the round machine, and on acceptance the candidate's block, its expert's
 * update and the contributor's learning reward. Every step is an event on `round-<id>` (or chain
 * B and the rewards stream); the replay checks each of them (`domain/pol/rounds.ts`).
 */
import { Deferred, Effect, Either, Schema } from "effect"
import { initialTransition, transition } from "xstate"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { newEvent, type BlockAppendedData, type EventData } from "../domain/ledger/events.ts"
import { blockHash, headerOf } from "../domain/ledger/blocks.ts"
import { verifyHex, type KeyPair } from "../domain/ledger/signing.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { roundMachine, type RoundMachineEvent } from "../domain/machines/round.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import type { ModelWeights, Part } from "../domain/model/tensor.ts"
import type { ModelRunner } from "../domain/ports/model-runner.ts"
import type { ModelError } from "../domain/model/forward.ts"
import { candidateProblem, defaultCheckSettings } from "../domain/pol/checks.ts"
import { evaluationSeed, type PoLSettings } from "../domain/pol/evaluation.ts"
import { RoundsProjection, acceptedImprovement, learningCause, learningReward, roundEventProblem, signOpening } from "../domain/pol/rounds.ts"
import { ChainProjection, isKnown } from "../domain/projections/chain.ts"
import { ContributorsProjection, requireWriter, type ContributorsState } from "../domain/projections/contributors.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import { foldStream, handleCommand } from "./command.ts"
import { completeExpertUpdates, loadModelOf, signParts } from "./model-ledger.ts"
import { signedVerdict } from "./pol-evaluation.ts"
import { verdictOf, type RoundReport, type Verdict } from "../domain/pol/report.ts"
import { payOwed } from "./rewards.ts"

/** The candidate cannot enter a round here: its part is unknown, or its key may not sign blocks. */
export class ContributionRefused extends Schema.TaggedError<ContributionRefused>()("ContributionRefused", { message: Schema.String }) {}

/** What a round asks of each validator, and what a validator in this process needs to answer. */
export type VerdictAsk = {
  readonly round: string
  readonly contribution: string
  /** The seq of the event that closed the round to contributions: the batches' seed is derived from its hash. */
  readonly seq: number
  readonly seed: number
  readonly base: ModelWeights
  readonly candidate: Part
}

/** Who decides a round, and how each one's verdict is had. */
export type RoundValidators<E, R> = {
  readonly keys: ReadonlyArray<string>
  /** The held-out text all of them draw from, when they share one; null when each names its own in its verdict. */
  readonly heldOut: string | null
  readonly concurrency: number
  readonly verdict: (validator: string, ask: VerdictAsk) => Effect.Effect<EventData<"PoLEvaluated">, E, R>
}

/** `keys` as validators in this process, sharing `heldOut`, evaluating one at a time (they share the CPU). */
export const localValidators = (keys: ReadonlyArray<KeyPair>, heldOut: Uint8Array, settings: PoLSettings): RoundValidators<ModelError, ModelRunner> => ({
  keys: keys.map((k) => k.publicKey),
  heldOut: sha256Hex(heldOut),
  concurrency: 1,
  verdict: (validator, a) => signedVerdict(keys.find((k) => k.publicKey === validator)!, a, heldOut, settings, undefined)
})

export type RoundSettings = {
  readonly ledgerKey: KeyPair
  readonly settings: PoLSettings
  /** How long the validators have, from the round's close, before it is decided on the verdicts in. */
  readonly deadlineMs: number
}


/** What a round's decision reads: the model, every block's payload, who may sign blocks, and the rounds so far. */
const RoundView = sideBySide("round", { model: ModelProjection, chain: ChainProjection, contributors: ContributorsProjection, rounds: RoundsProjection })

/**
 * Finish every round a stopped coordinator left open, as the log implies: an accepted
 * contribution's block (while its base is current), its expert's update and its reward; the
 * contributions never decided rejected for that reason; then the round closed. Run before a new
 * round; running it again records nothing. Returns the rounds finished, each with whether its
 * accepted block is on chain B (false: its part had moved on from the round's base).
 */
export const completeRounds = Effect.gen(function* () {
  const store = yield* EventStore
  const { state } = yield* foldStream("*", RoundView)
  const onChain = new Map<string, boolean>()
  for (const r of state.rounds.values()) {
    if (r.closed) continue
    const { round, target, base } = r.opened
    const stream = Streams.round(round)
    const undecided = [...r.contributions.keys()].filter((c) => c !== r.accepted && !r.rejected.has(c))
    if (undecided.length > 0)
      yield* store.append(stream, undecided.map((contribution) => newEvent("ContributionRejected", { round, contribution, reason: "the round's coordinator stopped before deciding it" })), "any")
    if (r.accepted !== undefined) {
      const block = r.contributions.get(r.accepted)!
      yield* handleCommand({
        stream: Streams.chainB,
        projection: RoundView,
        reads: "log",
        decide: (s) => {
          const known = isKnown(s.chain, block.hash)
          const appendable = !known && s.model.current.get(target)?.block === base
          onChain.set(round, known || appendable)
          return Either.right(appendable ? [newEvent("BlockAppended", block)] : [])
        }
      })
      yield* completeExpertUpdates
      if (r.owed !== undefined)
        yield* payOwed([{ to: r.owed.to, amount: r.owed.amount, kind: "learning", cause: learningCause(round, r.accepted) }])
    }
    yield* store.append(stream, [newEvent("RoundClosed", { round, accepted: r.accepted === undefined ? 0 : 1, rejected: r.rejected.size + undecided.length })], "any")
  }
  return onChain
})

/**
 * Decide `block` (a contribution of `candidate`, signed by its contributor) in a round of its own
 * with `validators`, to the end: every step recorded, the report returned. A candidate that cannot
 * enter a round (unknown part, stale base, bad signature, an unregistered contributor, a round run
 * for it before) is refused with `ContributionRefused` and records nothing.
 */
export const runRound = <E extends { readonly message: string }, R>(block: BlockAppendedData, candidate: Part, validators: RoundValidators<E, R>, r: RoundSettings) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const blobs = yield* BlobStore
    const refuse = (message: string) => new ContributionRefused({ message })
    yield* completeExpertUpdates
    yield* completeRounds
    const { state } = yield* foldStream("*", RoundView)
    const target = block.name
    const current = state.model.current.get(target)
    if (current === undefined || candidate.name !== target) return yield* refuse(`the model has no part ${target}, or the candidate is not one`)
    if (blockHash(headerOf(block)) !== block.hash || !verifyHex(block.contributor, block.hash, block.signature))
      return yield* refuse(`bad signature: block ${block.hash} is not signed by ${block.contributor}`)
    if (block.dependsOn.length !== 1 || block.dependsOn[0] !== current.block)
      return yield* refuse(`stale base: the candidate improves ${block.dependsOn.join(", ")}, but ${target} is at ${current.block}`)
    if (validators.keys.length === 0) return yield* refuse("no validator is available to decide a round")
    yield* Either.mapLeft(requireWriter(state.contributors, block.contributor), (e) => refuse(e.message))
    const { weights } = yield* loadModelOf(state.model)
    const round = `${target}-${block.hash.slice(0, 16)}`
    const contribution = block.hash.slice(0, 16)
    const stream = Streams.round(round)
    if (state.rounds.has(round)) return yield* refuse(`this candidate was submitted already, in round ${round}`)
    const machine = { s: initialTransition(roundMachine, { round, target, validators: validators.keys })[0] }
    const step = (e: RoundMachineEvent) => void (machine.s = transition(roundMachine, machine.s, e)[0])

    const opening = signOpening({ round, target, base: current.block, ...r.settings, heldOut: validators.heldOut, validators: [...validators.keys] }, r.ledgerKey)
    yield* store.append(stream, [newEvent("RoundOpened", opening), newEvent("ContributionSubmitted", { round, contribution, block })], "no_stream")
    step({ type: "opened" })
    step({ type: "submitted", contribution: { id: contribution, candidate: block.hash, contributor: block.contributor } })
    step({ type: "close" })
    const report = (accepted: boolean, reason: string, verdicts: ReadonlyArray<Verdict>, reward?: bigint): RoundReport => ({
      round,
      contribution,
      target,
      base: current.block,
      block: block.hash,
      accepted,
      reason,
      verdicts,
      ...(reward === undefined ? {} : { reward: reward.toString() })
    })

    // Checks before evaluation: against every block the part ever had.
    const earlier = yield* Effect.forEach(state.model.history.get(target) ?? [], (v) =>
      Effect.map(Effect.flatMap(blobs.get(state.chain.blocks.get(v.block)!.payload), decodePart), (part) => ({ block: v.block, part }))
    )
    const problem = candidateProblem(weights.spec, weights.parts.get(target)!, candidate, earlier, defaultCheckSettings)
    if (problem !== undefined) {
      const reason = `${problem.reason}: ${problem.detail}`
      yield* store.append(stream, [newEvent("ContributionRejected", { round, contribution, reason }), newEvent("RoundClosed", { round, accepted: 0, rejected: 1 })], "any")
      return report(false, reason, [])
    }

    // The batches are drawn with a seed nobody knew before the round closed to contributions.
    const head = (yield* store.head)!
    const ask: VerdictAsk = { round, contribution, seq: head.seq, seed: evaluationSeed(round, block.hash, head.hash), base: weights, candidate }
    const verdicts = yield* collectVerdicts(validators, ask, r, state.contributors, (passes, validator) => step({ type: "evaluated", contribution, validator, passes }), () =>
      machine.s.matches("evaluating")
    )
    if (machine.s.matches("evaluating")) step({ type: "deadline" })
    const outcome = machine.s.context.outcomes.find((o) => o.contribution === contribution)!
    if (!outcome.accepted) {
      yield* store.append(stream, [newEvent("ContributionRejected", { round, contribution, reason: outcome.reason }), newEvent("RoundClosed", { round, accepted: 0, rejected: 1 })], "any")
      return report(false, outcome.reason, verdicts)
    }

    const { state: rounds } = yield* foldStream(stream, RoundsProjection)
    const improvement = acceptedImprovement(rounds.get(round)!, contribution)
    yield* store.append(stream, [newEvent("ContributionAccepted", { round, contribution, block: block.hash, improvement })], "any")
    // What the acceptance implies (the block, its update, the reward, the close) is what a restart finishes too.
    if ((yield* completeRounds).get(round) !== true) return yield* refuse(`part ${target} moved on from ${current.block} while the round ran`)
    step({ type: "recorded" })
    return report(true, outcome.reason, verdicts, learningReward(improvement))
  })

/**
 * Ask every validator for its verdict, recording each one that checks out (its seed the round's,
 * and what the replay requires of a verdict) as it comes, until the round is decided (`pending`
 * turns false) or the deadline passes. A verdict that does not check out is no vote.
 */
const collectVerdicts = <E extends { readonly message: string }, R>(
  validators: RoundValidators<E, R>,
  ask: VerdictAsk,
  r: RoundSettings,
  contributors: ContributorsState,
  counted: (passes: boolean, validator: string) => void,
  pending: () => boolean
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const stream = Streams.round(ask.round)
    const verdicts: Verdict[] = []
    const decided = yield* Deferred.make<void>()
    const lock = yield* Effect.makeSemaphore(1)
    const record = (v: EventData<"PoLEvaluated">) =>
      Effect.gen(function* () {
        const { state: rounds } = yield* foldStream(stream, RoundsProjection)
        const problem =
          v.seed !== ask.seed
            ? `its seed ${v.seed} is not the round's ${ask.seed}`
            : roundEventProblem(rounds, contributors, { type: "PoLEvaluated", data: v }, [r.ledgerKey.publicKey])
        if (problem !== undefined) return yield* Effect.logWarning(`round ${ask.round}: the verdict of ${v.validator} is not counted: ${problem}`)
        yield* store.append(stream, [newEvent("PoLEvaluated", v)], "any")
        verdicts.push(verdictOf(v))
        counted(v.passes, v.validator)
        if (!pending()) yield* Deferred.succeed(decided, undefined)
      }).pipe(lock.withPermits(1), Effect.uninterruptible)
    const ask1 = (validator: string) =>
      validators.verdict(validator, ask).pipe(
        Effect.flatMap((v) => (v.validator === validator ? record(v) : Effect.logWarning(`round ${ask.round}: ${validator} answered with ${v.validator}'s verdict`))),
        Effect.catchAll((e) => Effect.logWarning(`round ${ask.round}: no verdict from ${validator}: ${e.message}`))
      )
    yield* Effect.forEach(validators.keys, ask1, { concurrency: validators.concurrency, discard: true }).pipe(
      Effect.raceFirst(Deferred.await(decided)),
      Effect.timeoutOption(`${r.deadlineMs} millis`)
    )
    return verdicts
  })

/** Sign the round and a candidate's block with `contributorSeed`, and decide it here with `validators` local validators on `heldOut`. */
export const runLocalRound = (r: {
  readonly candidate: Part
  readonly contributorSeed: string
  readonly validators: ReadonlyArray<KeyPair>
  readonly ledgerKey: KeyPair
  readonly heldOut: Uint8Array
  readonly settings: PoLSettings
  readonly deadlineMs?: number
}) =>
  Effect.gen(function* () {
    yield* completeRounds
    const { state } = yield* foldStream("*", ModelProjection)
    const current = state.current.get(r.candidate.name)
    if (current === undefined) return yield* new ContributionRefused({ message: `the model has no part ${r.candidate.name}` })
    const [block] = yield* signParts([r.candidate], () => [current.block], r.contributorSeed)
    return yield* runRound(block!, r.candidate, localValidators(r.validators, r.heldOut, r.settings), { ledgerKey: r.ledgerKey, settings: r.settings, deadlineMs: r.deadlineMs ?? 600_000 })
  })
