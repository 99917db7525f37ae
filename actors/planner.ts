import { Effect, Either, Schema } from "effect"
import type { ClusterFile } from "../domain/pipeline/cluster.ts"
import { trainingLayerLoads, type LayerLoad } from "../domain/pipeline/cost.ts"
import type { Device } from "../domain/pipeline/partition.ts"
import type { Plan, PlanDraft } from "../domain/pipeline/plan.ts"
import { decideMemory, moeStageMemory } from "../domain/pipeline/memory.ts"
import { validatePlan, type ValidationContext } from "../domain/pipeline/validate.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { NodesProjection, activeDevices } from "../domain/projections/nodes.ts"
import { PlansProjection, decideFreeze, decidePromote, type PlanEntry } from "../domain/projections/plans.ts"
import { checkRegisteredFit } from "../domain/pipeline/registered-fit.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import { foldStream, handleCommand } from "./command.ts"

export class NoPlanningInput extends Schema.TaggedError<NoPlanningInput>()("NoPlanningInput", { message: Schema.String }) {}

/** The ledger's model spec; `why` completes the refusal when there is none. */
const ledgerSpec = (why: string) =>
  Effect.flatMap(foldStream("*", ModelProjection), ({ state }) =>
    state.spec === undefined ? Effect.fail(new NoPlanningInput({ message: `the ledger has no model spec (run \`blyan init\`)${why}` })) : Effect.succeed(state.spec.spec)
  )

/** What plans are made for and checked against: the model's layers and the devices. */
export interface Cluster {
  readonly layers: ReadonlyArray<LayerLoad>
  readonly devices: ReadonlyArray<Device>
  /** Bytes crossing a stage boundary each way, when communication is counted. */
  readonly boundaryBytes?: number
}

const boundaryOf = (file: ClusterFile | undefined) => (file?.boundaryBytes === undefined ? {} : { boundaryBytes: file.boundaryBytes })

/** A cluster file that gives both layers and devices needs nothing from the ledger. */
export const completeCluster = (file: ClusterFile): Cluster | undefined =>
  file.layers === undefined ? undefined : { layers: file.layers, devices: file.devices, ...boundaryOf(file) }

/**
 * The cluster a command plans on: what the file gives, the rest from the ledger. A model's layer
 * holds its weights, gradients and AdamW state while training, so that is its memory; its cost
 * is the training FLOPs of one token through its active parameters.
 */
export const resolveCluster = (file: ClusterFile | undefined) =>
  Effect.gen(function* () {
    let layers = file?.layers
    if (layers === undefined) {
      const spec = yield* ledgerSpec(" and the cluster file gives no layers")
      layers = trainingLayerLoads(spec)
    }
    const devices = file?.devices ?? activeDevices((yield* foldStream("*", NodesProjection)).state)
    if (devices.length === 0) return yield* new NoPlanningInput({ message: "no devices: the ledger has no active nodes and no cluster file was given (--cluster F.json)" })
    const cluster: Cluster = { layers, devices, ...boundaryOf(file) }
    return cluster
  })

export type PromoteOutcome = { readonly entry: PlanEntry; readonly recorded: boolean }

/** What a promotion reads of the whole log: the plans, and the nodes and model a plan on registered nodes must fit. */
const PromotionView = sideBySide("promotion", { plans: PlansProjection, nodes: NodesProjection, model: ModelProjection })

/**
 * Validate, then record: `EpochPlanned` + `PlanPromoted` on the epoch's stream, then `PlanFrozen`
 * on chain A. A plan whose nodes are all registered must also fit them as registered, with the
 * ledger's model (what audit re-checks). An invalid or refused plan records nothing. Promoting a
 * plan that is already promoted finishes what is missing (a freeze cut off by a crash) and
 * otherwise changes nothing.
 */
export const promotePlan = (draft: PlanDraft, ctx: ValidationContext) =>
  Effect.gen(function* () {
    const plan: Plan = yield* validatePlan(draft, ctx)
    const ledger = (yield* foldStream("*", PromotionView)).state
    yield* checkRegisteredFit(plan, ledger.nodes, ledger.model.spec?.spec)
    // Plan ids are unique across epochs: check the whole log before the epoch stream's own check.
    const before = ledger.plans
    const pre = decidePromote(before, plan)
    if (Either.isLeft(pre) && pre.left.kind !== "AlreadyPromoted") return yield* pre.left
    const promote = Either.isRight(pre)
      ? handleCommand({ stream: Streams.epoch(plan.epoch), projection: PlansProjection, decide: (s) => decidePromote(s, plan) }).pipe(Effect.as(true))
      : Effect.succeed(false)
    const promoted = yield* promote
    const frozen = yield* handleCommand({ stream: Streams.chainA, projection: PlansProjection, decide: (s) => decideFreeze(s, plan) }).pipe(
      Effect.as(true),
      Effect.catchIf((e) => e._tag === "PlanRefused" && e.kind === "AlreadyFrozen", () => Effect.succeed(false))
    )
    const after = (yield* foldStream("*", PlansProjection)).state
    const outcome: PromoteOutcome = { entry: after.plans.get(plan.planId)!, recorded: promoted || frozen }
    return outcome
  })

export interface MemoryQuestion {
  readonly microbatches: number
  /** Tokens per microbatch; default the model's context length. */
  readonly tokens?: number
  readonly dataParallel?: number
}

/**
 * Which stages of a valid plan need ZeRO-1 or activation checkpointing to train the ledger's
 * model under 1F1B with this many microbatches, on the cluster's devices.
 */
export const planMemory = (plan: Plan, devices: ReadonlyArray<Device>, q: MemoryQuestion) =>
  Effect.gen(function* () {
    const spec = yield* ledgerSpec("")
    const memoryOf = new Map(devices.map((d) => [d.id, d.memory]))
    const tokens = q.tokens ?? spec.context
    const decision = yield* decideMemory({
      stages: plan.stages.map((s) => moeStageMemory(spec, s.end - s.start + 1, tokens, memoryOf.get(s.node) ?? 0)),
      microbatches: q.microbatches,
      dataParallel: q.dataParallel
    })
    return { tokens, decision }
  })
