import { Schema } from "effect"
import { ModelSpec } from "../model/spec.ts"
import { ImportedSpec } from "../model/families/imported-spec.ts"
import { Plan } from "../pipeline/plan.ts"
import { Receipt } from "../network/receipts.ts"
import type { StreamKind } from "./streams.ts"

/**
 * The event catalog: every event type of the log with its current version, its payload schema, the
 * kinds of stream it may appear in, and how to read every older version it ever had.
 * Event type names live here and nowhere else.
 */
const Hash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/), Schema.annotations({ identifier: "Hash" }))
const NonEmpty = Schema.String.pipe(Schema.minLength(1))
/** A spec the ledger publishes: the built-in model's or an imported one's. */
export const PublishedSpec = Schema.Union(ModelSpec, ImportedSpec)
export type PublishedSpec = typeof PublishedSpec.Type
const Count = Schema.Int.pipe(Schema.nonNegative())
/** BLY amounts are integer base units carried as decimal strings, so they never lose precision. */
const Amount = Schema.String.pipe(Schema.pattern(/^(0|[1-9][0-9]{0,38})$/), Schema.annotations({ identifier: "Amount" }))
const PublicKey = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/), Schema.annotations({ identifier: "Ed25519PublicKey" }))
const Signature = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{128}$/), Schema.annotations({ identifier: "Ed25519Signature" }))
export const Role = Schema.Literal("node", "contributor", "validator", "admin")
export type Role = typeof Role.Type
export const BlockKind = Schema.Literal("embedding", "attention", "router", "expert", "head")
export type BlockKind = typeof BlockKind.Type
const Dtype = Schema.Literal("f32", "f16", "bf16")

export const Covenant = Schema.Struct({
  title: NonEmpty,
  version: NonEmpty,
  principles: Schema.Array(Schema.Struct({ name: NonEmpty, text: NonEmpty })).pipe(Schema.minItems(1))
})
export type Covenant = typeof Covenant.Type

/** The signed part of a block: its hash is sha256(JCS(header)), the contributor signs that hash. */
export const BlockHeader = Schema.Struct({
  name: NonEmpty,
  kind: BlockKind,
  payload: Hash,
  size: Count,
  dtype: Dtype,
  tensors: Schema.Array(Schema.Struct({ name: NonEmpty, shape: Schema.Array(Count) })),
  dependsOn: Schema.Array(Hash).pipe(Schema.minItems(1)),
  contributor: PublicKey
})
export type BlockHeader = typeof BlockHeader.Type

export const BlockAppendedData = Schema.Struct({ ...BlockHeader.fields, hash: Hash, signature: Signature })
export type BlockAppendedData = typeof BlockAppendedData.Type

const ExpertUse = Schema.Struct({ layer: Count, expert: Count, node: NonEmpty, block: Hash })
/** An expert request that a node did not answer acceptably: no answer in time, a refusal, or a wrong one. */
const ExpertFailure = Schema.Struct({ layer: Count, expert: Count, node: NonEmpty, reason: NonEmpty })
const InferenceServedV1 = Schema.Struct({ request: NonEmpty, experts: Schema.Array(ExpertUse), tokens: Count, receipt: Signature })

/**
 * An older version of an event type as it is stored: its schema and streams, and the pure upcaster
 * that turns its decoded data into the next version's. Stored bytes are never rewritten.
 */
export interface LegacyVersion {
  readonly version: number
  readonly streams: ReadonlyArray<StreamKind>
  readonly schema: Schema.Schema<any, any>
  readonly upcast: (data: any) => unknown
}

const legacy = <A, I, B>(v: { version: number; streams: ReadonlyArray<StreamKind>; schema: Schema.Schema<A, I>; upcast: (data: A) => B }): LegacyVersion => v

/** A catalog entry at `version` (1 unless it has older versions, oldest first, in `history`). */
const event = <S extends Schema.Schema.AnyNoContext>(streams: ReadonlyArray<StreamKind>, schema: S, history: ReadonlyArray<LegacyVersion> = []) => ({
  version: history.length + 1,
  streams,
  schema,
  history
})

const RewardPaidV1 = Schema.Struct({ to: NonEmpty, amount: Amount, kind: Schema.Literal("inference", "learning"), cause: NonEmpty })

const ModelTrainedV1 = Schema.Struct({
  steps: Count,
  corpus: Hash,
  trainLossBefore: Schema.Number,
  trainLossAfter: Schema.Number,
  heldOutLossBefore: Schema.Number,
  heldOutLossAfter: Schema.Number,
  blocks: Schema.Array(Hash)
})

export const Catalog = {
  GenesisCovenantSealed: event(["chain-A"], Covenant),
  /** The built-in model's spec, or an imported open model's (its blocks named `<name>/<part>`). */
  ModelSpecPublished: event(["chain-A"], Schema.Struct({ spec: PublishedSpec })),
  /**
   * A local training run's outcome: the blocks it produced and the losses it measured. Since v2 it
   * is appended to chain B in the same atomic append as its blocks, and names its held-out text.
   */
  ModelTrained: event(["chain-B"], Schema.Struct({ ...ModelTrainedV1.fields, heldOut: Schema.NullOr(Hash), /** The pipeline epoch that trained it, if one did. */ epoch: Schema.optional(NonEmpty) }), [
    legacy({ version: 1, streams: ["chain-A"], schema: ModelTrainedV1, upcast: (d) => ({ ...d, heldOut: null }) })
  ]),
  PlanFrozen: event(["chain-A"], Schema.Struct({ planId: NonEmpty, epoch: NonEmpty, round: NonEmpty })),
  BlockAppended: event(["chain-B"], BlockAppendedData),
  ExpertUpdated: event(["expert"], Schema.Struct({ name: NonEmpty, block: Hash, previous: Schema.NullOr(Hash), reason: NonEmpty })),
  /**
   * A Proof-of-Learning round for one part: its base block, the rule its validators apply, the
   * held-out text they draw from (null when each validator draws from its own, named in its
   * verdict) and who they are; signed by a ledger key (`registrar`), since it names who decides.
   */
  RoundOpened: event(
    ["round"],
    Schema.Struct({
      round: NonEmpty,
      target: NonEmpty,
      base: Hash,
      epsilon: Schema.Number,
      minWinShare: Schema.Number,
      batches: Schema.Int.pipe(Schema.positive()),
      heldOut: Schema.NullOr(Hash),
      validators: Schema.Array(PublicKey).pipe(Schema.minItems(1)),
      registrar: PublicKey,
      signature: Signature
    })
  ),
  /** A candidate for the round's part: a block signed by its contributor, depending on the round's base. */
  ContributionSubmitted: event(["round"], Schema.Struct({ round: NonEmpty, contribution: NonEmpty, block: BlockAppendedData })),
  /**
   * One validator's signed figures for a contribution, on batches drawn with `seed` from the
   * held-out text the round names or, when it names none, from the validator's own (`heldOut`).
   */
  PoLEvaluated: event(
    ["round"],
    Schema.Struct({
      round: NonEmpty,
      contribution: NonEmpty,
      validator: PublicKey,
      seed: Count,
      baselineLoss: Schema.Number,
      candidateLoss: Schema.Number,
      improvement: Schema.Number,
      wins: Count,
      batches: Count,
      passes: Schema.Boolean,
      heldOut: Schema.optional(Hash),
      signature: Signature
    })
  ),
  ContributionAccepted: event(["round"], Schema.Struct({ round: NonEmpty, contribution: NonEmpty, block: Hash, improvement: Schema.Number })),
  ContributionRejected: event(["round"], Schema.Struct({ round: NonEmpty, contribution: NonEmpty, reason: NonEmpty })),
  RoundClosed: event(["round"], Schema.Struct({ round: NonEmpty, accepted: Count, rejected: Count })),
  NodeRegistered: event(
    ["node"],
    Schema.Struct({
      node: NonEmpty,
      publicKey: PublicKey,
      keyHash: Hash,
      device: NonEmpty,
      memory: Count,
      speed: Schema.Number,
      /** Bytes per second of the node's link, measured; events before it was measured have none. */
      bandwidth: Schema.optional(Schema.Number)
    })
  ),
  NodeExpertsAnnounced: event(["node"], Schema.Struct({ node: NonEmpty, blocks: Schema.Array(Hash) })),
  /** `until` (ms since the epoch): a ban for a while, for failing; without it, for cheating, with the evidence in `reason`. */
  NodeBanned: event(["node"], Schema.Struct({ node: NonEmpty, reason: NonEmpty, until: Schema.optional(Count) })),
  NodeRetired: event(["node"], Schema.Struct({ node: NonEmpty })),
  /**
   * BLY issued to `to` for inference or learning (`cause`: the request, or the round and
   * contribution), in issuance epoch `epoch` (see `domain/rewards/issuance.ts`). Version 1 named
   * no epoch: it is read as the first.
   */
  RewardPaid: event(["rewards"], Schema.Struct({ ...RewardPaidV1.fields, epoch: Count }), [
    legacy({ version: 1, streams: ["rewards"], schema: RewardPaidV1, upcast: (d) => ({ ...d, epoch: 0 }) })
  ]),
  /**
   * A signed transfer of BLY: `from` (a node id or an ed25519 public key) signs from, to, amount
   * and its next nonce (1, 2, …), so a transfer cannot be replayed. Version 1 carried no signature.
   */
  TransferMade: event(["rewards"], Schema.Struct({ from: NonEmpty, to: NonEmpty, amount: Amount, nonce: Schema.Int.pipe(Schema.positive()), signature: Signature }), [
    legacy({
      version: 1,
      streams: ["rewards"],
      schema: Schema.Struct({ from: NonEmpty, to: NonEmpty, amount: Amount }),
      // Never written by any release; read as unsigned (audit refuses it).
      upcast: (d) => ({ ...d, nonce: 1, signature: "0".repeat(128) })
    })
  ]),
  /**
   * One chat request's expert answers, with every node's signed receipt and the requests that
   * failed; a long answer is recorded in parts (`part` 0, 1, …), each small enough for one message.
   */
  InferenceServed: event(
    ["inference"],
    Schema.Struct({
      request: NonEmpty,
      part: Count,
      tokens: Count,
      experts: Schema.Array(ExpertUse),
      receipts: Schema.Array(Receipt),
      failures: Schema.Array(ExpertFailure)
    }),
    [
      legacy({
        version: 1,
        streams: ["inference"],
        schema: InferenceServedV1,
        // Version 1 kept one signature without what it signed: nothing of it can be checked.
        upcast: (d) => ({ request: d.request, part: 0, tokens: d.tokens, experts: d.experts, receipts: [], failures: [] })
      })
    ]
  ),
  /**
   * An epoch's training, fixed when it begins so that a restart resumes the same run: `rounds` of
   * `steps` optimiser steps each, on batches of `batch` windows split into `microbatches`, drawn
   * with `seed` from the corpus (by hash), judged on the held-out text (by hash).
   */
  EpochScheduled: event(
    ["epoch"],
    Schema.Struct({
      epoch: NonEmpty,
      rounds: Schema.Int.pipe(Schema.positive()),
      steps: Schema.Int.pipe(Schema.positive()),
      batch: Schema.Int.pipe(Schema.positive()),
      microbatches: Schema.Int.pipe(Schema.positive()),
      lr: Schema.Number,
      seed: Count,
      corpus: Hash,
      heldOut: Hash
    })
  ),
  EpochPlanned: event(["epoch"], Schema.Struct({ plan: Plan })),
  PlanPromoted: event(["epoch"], Schema.Struct({ planId: NonEmpty, epoch: NonEmpty, round: NonEmpty })),
  RoundStarted: event(["epoch"], Schema.Struct({ epoch: NonEmpty, round: NonEmpty, planId: NonEmpty })),
  StageFailed: event(["epoch"], Schema.Struct({ epoch: NonEmpty, round: NonEmpty, stage: Count, node: NonEmpty, reason: NonEmpty })),
  /** A failed stage's layers given to another node for the rest of the round. */
  StageReassigned: event(["epoch"], Schema.Struct({ epoch: NonEmpty, round: NonEmpty, stage: Count, from: NonEmpty, to: NonEmpty })),
  FallbackActivated: event(["epoch"], Schema.Struct({ epoch: NonEmpty, round: NonEmpty, reason: NonEmpty })),
  /** A round's steps all applied: the weights and optimiser state after them are blob `checkpoint` (see `domain/model/checkpoint.ts`). */
  RoundCompleted: event(["epoch"], Schema.Struct({ epoch: NonEmpty, round: NonEmpty, planId: NonEmpty, step: Count, loss: Schema.Number, checkpoint: Hash })),
  /** A round that did not complete: none of its steps count, and it is run again from the last checkpoint. */
  RoundFailed: event(["epoch"], Schema.Struct({ epoch: NonEmpty, round: NonEmpty, reason: NonEmpty })),
  /** The epoch's rounds improved held-out loss: its weights became the model's blocks (`ModelTrained` names the epoch). */
  EpochCompleted: event(["epoch"], Schema.Struct({ epoch: NonEmpty, rounds: Count, lossBefore: Schema.Number, lossAfter: Schema.Number })),
  /** The epoch's updates do not become the model: its evaluation found no improvement, or it was abandoned. */
  EpochRolledBack: event(["epoch"], Schema.Struct({ epoch: NonEmpty, reason: NonEmpty })),
  ApiKeyIssued: event(["keys"], Schema.Struct({ keyHash: Hash, role: Role, label: Schema.optional(Schema.String) })),
  ApiKeyRevoked: event(["keys"], Schema.Struct({ keyHash: Hash, reason: Schema.optional(Schema.String) })),
  /** A contributor's key made a known writer of blocks, signed by a ledger key (`registrar`). */
  ContributorRegistered: event(["keys"], Schema.Struct({ publicKey: PublicKey, label: Schema.optional(Schema.String), registrar: PublicKey, signature: Signature })),
  /** A contributor's key no longer accepted for new blocks (its blocks so far stay), signed by a ledger key. */
  ContributorRevoked: event(["keys"], Schema.Struct({ publicKey: PublicKey, reason: NonEmpty, registrar: PublicKey, signature: Signature })),
  /**
   * On a witness's own log: a ledger offered a tree head that cannot extend the one this witness
   * co-signed. Both signed notes are the evidence; `ledger` is the public key that signed them.
   */
  TreeHeadForked: event(["witness"], Schema.Struct({ origin: NonEmpty, ledger: PublicKey, witnessed: NonEmpty, offered: NonEmpty, reason: NonEmpty }))
} as const

export type Catalog = typeof Catalog
export type EventType = keyof Catalog
export type EventData<T extends EventType> = Catalog[T]["schema"]["Type"]
export const eventTypes = Object.keys(Catalog) as ReadonlyArray<EventType>
export const isEventType = (s: string): s is EventType => Object.prototype.hasOwnProperty.call(Catalog, s)

/** A typed event as domain code builds it, before the store seals it into an envelope. */
export type NewEvent<T extends EventType = EventType> = { readonly type: T; readonly version: number; readonly data: EventData<T> }

export const newEvent = <T extends EventType>(type: T, data: EventData<T>): NewEvent<T> => ({
  type,
  version: Catalog[type].version,
  data
})
