import { Schema } from "effect"
import { ModelSpec } from "../model/spec.ts"
import { Plan } from "../pipeline/plan.ts"

/**
 * The event catalog: every event type of the log with its current version and payload schema.
 * Event type names live here and nowhere else.
 */
const Hash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/), Schema.annotations({ identifier: "Hash" }))
const NonEmpty = Schema.String.pipe(Schema.minLength(1))
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

export const Catalog = {
  GenesisCovenantSealed: { version: 1, schema: Covenant },
  ModelSpecPublished: { version: 1, schema: Schema.Struct({ spec: ModelSpec }) },
  /** A local training run's outcome: which blocks it produced and the losses it measured. */
  ModelTrained: {
    version: 1,
    schema: Schema.Struct({
      steps: Count,
      corpus: Hash,
      trainLossBefore: Schema.Number,
      trainLossAfter: Schema.Number,
      heldOutLossBefore: Schema.Number,
      heldOutLossAfter: Schema.Number,
      blocks: Schema.Array(Hash)
    })
  },
  PlanFrozen: { version: 1, schema: Schema.Struct({ planId: NonEmpty, epoch: NonEmpty, round: NonEmpty }) },
  BlockAppended: { version: 1, schema: BlockAppendedData },
  ExpertUpdated: {
    version: 1,
    schema: Schema.Struct({ name: NonEmpty, block: Hash, previous: Schema.NullOr(Hash), reason: NonEmpty })
  },
  RoundOpened: {
    version: 1,
    schema: Schema.Struct({ round: NonEmpty, target: NonEmpty, baseBlock: Hash, margin: Schema.Number, quorum: Count })
  },
  ContributionSubmitted: {
    version: 1,
    schema: Schema.Struct({ round: NonEmpty, contribution: NonEmpty, contributor: PublicKey, block: Hash })
  },
  PoLEvaluated: {
    version: 1,
    schema: Schema.Struct({
      round: NonEmpty,
      contribution: NonEmpty,
      validator: PublicKey,
      baselineLoss: Schema.Number,
      candidateLoss: Schema.Number,
      dataset: Hash,
      signature: Signature
    })
  },
  ContributionAccepted: {
    version: 1,
    schema: Schema.Struct({ round: NonEmpty, contribution: NonEmpty, block: Hash, improvement: Schema.Number })
  },
  ContributionRejected: {
    version: 1,
    schema: Schema.Struct({ round: NonEmpty, contribution: NonEmpty, reason: NonEmpty })
  },
  RoundClosed: { version: 1, schema: Schema.Struct({ round: NonEmpty, accepted: Count, rejected: Count }) },
  NodeRegistered: {
    version: 1,
    schema: Schema.Struct({ node: NonEmpty, publicKey: PublicKey, keyHash: Hash, device: NonEmpty, memory: Count, speed: Schema.Number })
  },
  NodeExpertsAnnounced: { version: 1, schema: Schema.Struct({ node: NonEmpty, blocks: Schema.Array(Hash) }) },
  NodeBanned: { version: 1, schema: Schema.Struct({ node: NonEmpty, reason: NonEmpty }) },
  NodeRetired: { version: 1, schema: Schema.Struct({ node: NonEmpty }) },
  RewardPaid: {
    version: 1,
    schema: Schema.Struct({ to: NonEmpty, amount: Amount, kind: Schema.Literal("inference", "learning"), cause: NonEmpty })
  },
  TransferMade: { version: 1, schema: Schema.Struct({ from: NonEmpty, to: NonEmpty, amount: Amount }) },
  InferenceServed: {
    version: 1,
    schema: Schema.Struct({ request: NonEmpty, experts: Schema.Array(ExpertUse), tokens: Count, receipt: Signature })
  },
  EpochPlanned: { version: 1, schema: Schema.Struct({ plan: Plan }) },
  PlanPromoted: { version: 1, schema: Schema.Struct({ planId: NonEmpty, epoch: NonEmpty, round: NonEmpty }) },
  RoundStarted: { version: 1, schema: Schema.Struct({ epoch: NonEmpty, round: NonEmpty, planId: NonEmpty }) },
  StageFailed: {
    version: 1,
    schema: Schema.Struct({ epoch: NonEmpty, round: NonEmpty, stage: Count, node: NonEmpty, reason: NonEmpty })
  },
  FallbackActivated: { version: 1, schema: Schema.Struct({ epoch: NonEmpty, round: NonEmpty, reason: NonEmpty }) },
  EpochCompleted: { version: 1, schema: Schema.Struct({ epoch: NonEmpty, rounds: Count }) },
  ApiKeyIssued: { version: 1, schema: Schema.Struct({ keyHash: Hash, role: Role, label: Schema.optional(Schema.String) }) },
  ApiKeyRevoked: { version: 1, schema: Schema.Struct({ keyHash: Hash, reason: Schema.optional(Schema.String) }) }
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
