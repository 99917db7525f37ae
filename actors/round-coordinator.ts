/**
 * A Proof-of-Learning round run to its decision in this process, with local validators: the round
 * opened (signed by the ledger key), the candidate submitted, the checks before evaluation, each
 * validator's signed verdict on batches drawn with a seed fixed by the log's head at the round's
 * close, the decision of the round machine, and on acceptance the candidate's block, its expert's
 * update and the contributor's learning reward. Every step is an event on `round-<id>` (or chain
 * B and the rewards stream); the replay checks each of them (`domain/pol/rounds.ts`).
 */
import { Effect, Either, Schema } from "effect"
import { initialTransition, transition } from "xstate"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { newEvent } from "../domain/ledger/events.ts"
import { keyPairFromSeed, type KeyPair } from "../domain/ledger/signing.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { roundMachine, type RoundMachineEvent } from "../domain/machines/round.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import type { Part } from "../domain/model/tensor.ts"
import { candidateProblem, defaultCheckSettings } from "../domain/pol/checks.ts"
import { evaluationSeed, shortfall, type Figures, type PoLSettings } from "../domain/pol/evaluation.ts"
import { RoundsProjection, acceptedImprovement, learningCause, learningReward, signOpening, signVerdict } from "../domain/pol/rounds.ts"
import { ChainProjection, isKnown } from "../domain/projections/chain.ts"
import { ContributorsProjection, requireWriter } from "../domain/projections/contributors.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import { foldStream, handleCommand } from "./command.ts"
import { completeExpertUpdates, loadModelOf, signParts } from "./model-ledger.ts"
import { evaluateCandidate } from "./pol-evaluation.ts"

/** The candidate cannot enter a round here: its part is unknown, or its key may not sign blocks. */
export class ContributionRefused extends Schema.TaggedError<ContributionRefused>()("ContributionRefused", { message: Schema.String }) {}

export type LocalRound = {
  readonly candidate: Part
  readonly contributorSeed: string
  readonly validators: ReadonlyArray<KeyPair>
  readonly ledgerKey: KeyPair
  readonly heldOut: Uint8Array
  readonly settings: PoLSettings
}

export type Verdict = Figures & { readonly validator: string; readonly passes: boolean }

export type RoundReport = {
  readonly round: string
  readonly contribution: string
  readonly target: string
  readonly base: string
  readonly block: string
  readonly accepted: boolean
  readonly reason: string
  readonly verdicts: ReadonlyArray<Verdict>
  /** The learning reward in base units, when accepted. */
  readonly reward: string | undefined
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
        yield* store.append(Streams.rewards, [newEvent("RewardPaid", { to: r.owed.to, amount: r.owed.amount.toString(), kind: "learning", cause: learningCause(round, r.accepted) })], "any")
    }
    yield* store.append(stream, [newEvent("RoundClosed", { round, accepted: r.accepted === undefined ? 0 : 1, rejected: r.rejected.size + undecided.length })], "any")
  }
  return onChain
})

export const runLocalRound = (r: LocalRound) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const blobs = yield* BlobStore
    yield* completeExpertUpdates
    yield* completeRounds
    const { state } = yield* foldStream("*", RoundView)
    const target = r.candidate.name
    const current = state.model.current.get(target)
    if (current === undefined) return yield* new ContributionRefused({ message: `the model has no part ${target}` })
    const contributor = keyPairFromSeed(r.contributorSeed).publicKey
    yield* Either.mapLeft(requireWriter(state.contributors, contributor), (e) => new ContributionRefused({ message: e.message }))
    const { weights } = yield* loadModelOf(state.model)
    const [block] = yield* signParts([r.candidate], () => [current.block], r.contributorSeed)
    const round = `${target}-${block!.hash.slice(0, 16)}`
    const contribution = block!.hash.slice(0, 16)
    const stream = Streams.round(round)
    if (state.rounds.has(round)) return yield* new ContributionRefused({ message: `this candidate was submitted already, in round ${round}` })
    const machine = { s: initialTransition(roundMachine, { round, target, validators: r.validators.map((v) => v.publicKey) })[0] }
    const step = (e: RoundMachineEvent) => void (machine.s = transition(roundMachine, machine.s, e)[0])

    const opening = signOpening(
      { round, target, base: current.block, ...r.settings, heldOut: sha256Hex(r.heldOut), validators: r.validators.map((v) => v.publicKey) },
      r.ledgerKey
    )
    yield* store.append(stream, [newEvent("RoundOpened", opening), newEvent("ContributionSubmitted", { round, contribution, block: block! })], "no_stream")
    step({ type: "opened" })
    step({ type: "submitted", contribution: { id: contribution, candidate: block!.hash, contributor } })
    step({ type: "close" })
    const report = (accepted: boolean, reason: string, verdicts: ReadonlyArray<Verdict>, reward?: bigint): RoundReport => ({
      round,
      contribution,
      target,
      base: current.block,
      block: block!.hash,
      accepted,
      reason,
      verdicts,
      reward: reward?.toString()
    })

    // Checks before evaluation: against every block the part ever had.
    const earlier = yield* Effect.forEach(state.model.history.get(target) ?? [], (v) =>
      Effect.map(Effect.flatMap(blobs.get(state.chain.blocks.get(v.block)!.payload), decodePart), (part) => ({ block: v.block, part }))
    )
    const problem = candidateProblem(weights.spec, weights.parts.get(target)!, r.candidate, earlier, defaultCheckSettings)
    if (problem !== undefined) {
      const reason = `${problem.reason}: ${problem.detail}`
      yield* store.append(stream, [newEvent("ContributionRejected", { round, contribution, reason }), newEvent("RoundClosed", { round, accepted: 0, rejected: 1 })], "any")
      return report(false, reason, [])
    }

    // The batches are drawn with a seed nobody knew before the round closed to contributions.
    const head = (yield* store.head)!
    const seed = evaluationSeed(round, block!.hash, head.hash)
    const verdicts: Verdict[] = []
    for (const v of r.validators) {
      const figures = yield* evaluateCandidate(weights, r.candidate, r.heldOut, seed, r.settings)
      const passes = shortfall(figures, r.settings) === undefined
      yield* store.append(stream, [newEvent("PoLEvaluated", signVerdict({ round, contribution, validator: v.publicKey, seed, ...figures, passes }, v.seed))], "any")
      verdicts.push({ ...figures, validator: v.publicKey, passes })
      step({ type: "evaluated", contribution, validator: v.publicKey, passes })
    }
    if (machine.s.matches("evaluating")) step({ type: "deadline" })
    const outcome = machine.s.context.outcomes.find((o) => o.contribution === contribution)!
    if (!outcome.accepted) {
      yield* store.append(stream, [newEvent("ContributionRejected", { round, contribution, reason: outcome.reason }), newEvent("RoundClosed", { round, accepted: 0, rejected: 1 })], "any")
      return report(false, outcome.reason, verdicts)
    }

    const { state: rounds } = yield* foldStream(stream, RoundsProjection)
    const improvement = acceptedImprovement(rounds.get(round)!, contribution)
    yield* store.append(stream, [newEvent("ContributionAccepted", { round, contribution, block: block!.hash, improvement })], "any")
    // What the acceptance implies (the block, its update, the reward, the close) is what a restart finishes too.
    if ((yield* completeRounds).get(round) !== true)
      return yield* new ContributionRefused({ message: `part ${target} moved on from ${current.block} while the round ran` })
    step({ type: "recorded" })
    return report(true, outcome.reason, verdicts, learningReward(improvement))
  })
