import { Either } from "effect"
import { decodeEvent, verifyLink, type Envelope, type Head } from "./envelope.ts"
import { GENESIS_HASH } from "./genesis.ts"
import { checkBlock, type PayloadFact } from "./blocks.ts"
import { evolveLedgerState, initialLedgerState, type LedgerState } from "../projections/ledger-state.ts"
import { isKnown } from "../projections/chain.ts"
import { makeInferenceLedger } from "../rewards/inference.ts"
import { transferProblem } from "../projections/balances.ts"
import { contributorProblem, registrationProblem, revocationProblem } from "../projections/contributors.ts"
import { learningRewardProblem, roundEventProblem } from "../pol/rounds.ts"
import { epochAt, ISSUANCE, rewardEpoch, type IssuanceSchedule } from "../rewards/issuance.ts"
import type { EventData } from "./events.ts"
import { initPart } from "../model/init.ts"
import { encodePart } from "../model/safetensors.ts"
import { partNames, type ModelSpec } from "../model/spec.ts"
import { sha256Hex } from "./hash.ts"
import { checkRegisteredFit } from "../pipeline/registered-fit.ts"

export type AuditFinding = { readonly seq: number; readonly reason: string }

export type Replay = {
  readonly events: number
  readonly head: Head | undefined
  readonly streams: ReadonlySet<string>
  readonly state: LedgerState
  /** The first event that does not verify; replay stops there. */
  readonly firstBad: AuditFinding | undefined
}

/** A replay in progress: feed it envelopes in order until `step` says stop, then take the result. */
export interface Replayer {
  /** Verify and apply one envelope; false once an envelope fails (it and everything after are not applied). */
  readonly step: (env: Envelope) => boolean
  readonly result: () => Replay
}

export type ReplayOptions = {
  /** What is known of a block's payload blob; unchecked when absent. */
  readonly payload?: (hash: string) => PayloadFact
  /** The ledger keys trusted to register and revoke contributors (none by default). */
  readonly ledgerKeys?: ReadonlyArray<string>
  /** The issuance schedule rewards are held to (the network's by default). */
  readonly schedule?: IssuanceSchedule
}

/**
 * Replay the log from seq 0 and verify everything an event can be checked for: its link in the
 * hash chain, the genesis constant, its schema and version, the rules of the DAG (hash,
 * signature, dependencies, payload; a genesis block's weights re-derived from the spec's seed),
 * that every block comes from a known writer (a contributor a trusted ledger key registered), the
 * rules of Proof-of-Learning rounds (`domain/pol/rounds.ts`), and
 * inference's receipts and rewards, the issuance schedule's caps, every transfer's signature,
 * nonce and cover, and that a plan on registered nodes fits them as registered. The same log
 * always replays to the same state.
 */
export const makeReplayer = ({ payload, ledgerKeys = [], schedule = ISSUANCE }: ReplayOptions = {}): Replayer => {
  const state = initialLedgerState()
  const streams = new Set<string>()
  let head: Head | undefined
  let events = 0
  let firstBad: AuditFinding | undefined
  /** The issuance epoch the log's time has reached: the latest of its events' times so far. */
  let reached = 0
  const inference = makeInferenceLedger()
  // A genesis block holds exactly the weights the spec's seed gives: re-derived, never taken on trust.
  const seededPayloads = new Map<string, string>()
  const genesisPayload = (spec: ModelSpec, specHash: string, name: string): string => {
    const key = `${specHash}/${name}`
    let hash = seededPayloads.get(key)
    if (hash === undefined) {
      hash = partNames(spec).includes(name) ? sha256Hex(encodePart(initPart(spec, name))) : `(no part ${name} in ${spec.name})`
      seededPayloads.set(key, hash)
    }
    return hash
  }
  /** A reward must name an epoch it may be in, and pay what it earned, or what that epoch had left if less. */
  const rewardProblem = (d: EventData<"RewardPaid">): string | undefined => {
    const epoch = rewardEpoch(schedule, state.balances, d, reached)
    if ("problem" in epoch) return epoch.problem
    return d.kind === "inference" ? inference.paid(d, epoch.left) : learningRewardProblem(state.rounds, d, epoch.left)
  }
  const stop = (seq: number, reason: string) => {
    firstBad = { seq, reason }
    return false
  }
  const apply = (env: Envelope): boolean => {
    const link = verifyLink(head, env)
    if (Either.isLeft(link)) return stop(link.left.seq, link.left.reason)
    if (env.seq === 0 && env.hash !== GENESIS_HASH) return stop(0, "seq 0 is not the genesis covenant every install shares")
    const decoded = decodeEvent(env)
    if (Either.isLeft(decoded)) return stop(env.seq, decoded.left.reason)
    const event = decoded.right
    reached = Math.max(reached, epochAt(schedule, env.at))
    if (env.seq === 0 && event.type !== "GenesisCovenantSealed") return stop(0, "seq 0 is not the genesis covenant")
    if (env.seq > 0 && event.type === "GenesisCovenantSealed") return stop(env.seq, "a second genesis covenant")
    if (event.type === "BlockAppended") {
      const ok = checkBlock((h) => isKnown(state.chain, h), event.data, payload?.(event.data.payload))
      if (Either.isLeft(ok)) return stop(env.seq, ok.left.message)
      const spec = state.model.spec
      const genesis = spec !== undefined && event.data.dependsOn.includes(spec.hash)
      if (genesis) {
        const seeded = genesisPayload(spec.spec, spec.hash, event.data.name)
        if (seeded !== event.data.payload)
          return stop(env.seq, `block ${event.data.name} depends on the model spec but its payload ${event.data.payload} is not the spec's seeded genesis weights (${seeded})`)
      }
      const writer = contributorProblem(state.contributors, event.data.contributor, genesis)
      if (writer !== undefined) return stop(env.seq, `block ${event.data.name}: ${writer}`)
    }
    const wrong =
      event.type === "InferenceServed"
        ? inference.served(state.nodes, event.data)
        : event.type === "RewardPaid"
          ? rewardProblem(event.data)
          : event.type === "TransferMade"
            ? transferProblem(state.balances, state.nodes, event.data)
            : event.type === "ContributorRegistered"
              ? registrationProblem(state.contributors, event.data, ledgerKeys)
              : event.type === "ContributorRevoked"
                ? revocationProblem(state.contributors, event.data, ledgerKeys)
                : event.type === "EpochPlanned"
                  ? Either.match(checkRegisteredFit(event.data.plan, state.nodes, state.model.spec?.spec), { onLeft: (e) => e.message, onRight: () => undefined })
                  : roundEventProblem(state.rounds, state.contributors, event, ledgerKeys)
    if (wrong !== undefined) return stop(env.seq, wrong)
    evolveLedgerState(state, event)
    streams.add(env.stream)
    head = { seq: env.seq, hash: env.hash }
    events++
    return true
  }
  return {
    step: (env) => firstBad === undefined && apply(env),
    result: () => ({ events, head, streams, state, firstBad })
  }
}

/** Replay a whole log held in memory (see `makeReplayer`). */
export const replay = (log: Iterable<Envelope>, options?: ReplayOptions): Replay => {
  const r = makeReplayer(options)
  for (const env of log) if (!r.step(env)) break
  return r.result()
}
