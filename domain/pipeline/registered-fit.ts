/**
 * A plan checked against the ledger itself: the nodes as they registered (their memory and
 * speed) and the ledger's model (each layer's training memory). Audit re-checks every plan whose
 * nodes are all registered when it is recorded; a plan for devices the ledger does not know (made
 * from a cluster file) has nothing on the log to be checked against.
 */
import { Either } from "effect"
import type { ModelSpec } from "../model/spec.ts"
import type { NodesState } from "../projections/nodes.ts"
import { trainingLayerLoads } from "./cost.ts"
import type { PlanDraft } from "./plan.ts"
import { validatePlan, validationContext, type PlanInvalid, type ValidationContext } from "./validate.ts"

/** The validation context the ledger gives: registered nodes, and the model's layers as they train. */
export const registeredContext = (spec: ModelSpec, nodes: NodesState): ValidationContext =>
  validationContext({ layers: trainingLayerLoads(spec), devices: [...nodes.values()].map((n) => ({ id: n.node, speed: n.speed, memory: n.memory })) })

/** The plan checked against the registered nodes and the model; right when there is nothing to check it against. */
export const checkRegisteredFit = (plan: PlanDraft, nodes: NodesState, spec: ModelSpec | undefined): Either.Either<void, PlanInvalid> =>
  spec === undefined || !plan.stages.every((s) => nodes.has(s.node)) ? Either.void : Either.map(validatePlan(plan, registeredContext(spec, nodes)), () => undefined)
