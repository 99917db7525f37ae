import { Either, Schema } from "effect"
import { derivedIdMismatch, derivedIdMismatchMessage, epochIdProblem, planIdLabel, planIdProblem, type Plan, type PlanDraft, type PlanStage } from "./plan.ts"

/** What the validator knows of a node: its speed and memory (same units as layer memory). */
export interface DeviceInfo {
  readonly speed: number
  readonly memory: number
}

/** Known devices by node id. */
export type DeviceRegistry = ReadonlyMap<string, DeviceInfo>

export interface ValidationContext {
  readonly registry: DeviceRegistry
  /** Memory of each model layer; its length is the model's layer count L. */
  readonly layerMemory: ReadonlyArray<number>
}

/** What plans are checked against: these devices (by id) and layers. */
export const validationContext = (c: {
  readonly layers: ReadonlyArray<{ readonly memory: number }>
  readonly devices: ReadonlyArray<DeviceInfo & { readonly id: string }>
}): ValidationContext => ({
  registry: new Map(c.devices.map((d) => [d.id, { speed: d.speed, memory: d.memory }])),
  layerMemory: c.layers.map((l) => l.memory)
})

const failure = Schema.TaggedStruct
const message = Schema.String
const range = { stage: Schema.Number, start: Schema.Number, end: Schema.Number }

/**
 * Every way a plan can be wrong, each named, each with a message for people. Plain tagged
 * records (the CLI prints them as JSON with their `_tag` and `message`); the schema lets
 * `PlanInvalid` carry them as one of its fields.
 */
export const PlanFailure = Schema.Union(
  failure("BadName", { field: Schema.Literal("planId", "epoch", "round"), message }),
  failure("DerivedIdMismatch", { planId: Schema.String, derived: Schema.String, message }),
  failure("NoStages", { message }),
  failure("NonIntegerIndex", { ...range, message }),
  failure("NegativeIndex", { ...range, message }),
  failure("ReversedRange", { ...range, message }),
  failure("OutOfOrder", { stage: Schema.Number, start: Schema.Number, previousStart: Schema.Number, message }),
  failure("Overlap", { stage: Schema.Number, from: Schema.Number, to: Schema.Number, message }),
  failure("Gap", { after: Schema.Number, before: Schema.Number, message }),
  failure("LayerCountMismatch", { layers: Schema.Number, covered: Schema.Number, message }),
  failure("DuplicateDevice", { node: Schema.String, stages: Schema.Array(Schema.Number), message }),
  failure("UnknownDevice", { node: Schema.String, stage: Schema.Number, message }),
  failure("OutOfMemory", { stage: Schema.Number, node: Schema.String, needs: Schema.Number, has: Schema.Number, message })
)
export type PlanFailure = typeof PlanFailure.Type

export type PlanFailureTag = PlanFailure["_tag"]

/** `planId` is the id as it may be printed (`planIdLabel`): a refused id is quoted and escaped. */
export class PlanInvalid extends Schema.TaggedError<PlanInvalid>()("PlanInvalid", {
  planId: Schema.String,
  failures: Schema.Array(PlanFailure),
  message: Schema.String
}) {
  static of({ planId, failures }: { readonly planId: string; readonly failures: ReadonlyArray<PlanFailure> }): PlanInvalid {
    return new PlanInvalid({ planId, failures, message: `plan ${planId} is invalid: ${failures.map((f) => f.message).join("; ")}` })
  }
}

type DraftStage = PlanDraft["stages"][number]

const wellFormed = (s: DraftStage) => Number.isSafeInteger(s.start) && Number.isSafeInteger(s.end) && s.start >= 0 && s.end >= 0 && s.start <= s.end

const missing = (after: number, before: number) =>
  before - after === 2 ? `layer ${after + 1} is in no stage` : `layers ${after + 1}..${before - 1} are in no stage`

/** What is wrong with the plan's names: its id (its characters, and its content when of the derived form), epoch and round. */
const nameFailures = (plan: PlanDraft): PlanFailure[] => {
  const out: PlanFailure[] = []
  const idProblem = planIdProblem(plan.planId)
  if (idProblem !== undefined) out.push({ _tag: "BadName", field: "planId", message: idProblem })
  const derived = derivedIdMismatch(plan.planId, plan)
  if (derived !== undefined) out.push({ _tag: "DerivedIdMismatch", planId: plan.planId, derived, message: derivedIdMismatchMessage(plan.planId, derived) })
  const epochProblem = epochIdProblem(plan.epoch)
  if (epochProblem !== undefined) out.push({ _tag: "BadName", field: "epoch", message: epochProblem })
  if (plan.round.length === 0) out.push({ _tag: "BadName", field: "round", message: "the round is empty" })
  return out
}

/** All failures of a plan against the registry and the model's layers; empty when valid. */
export const planFailures = (plan: PlanDraft, ctx: ValidationContext): ReadonlyArray<PlanFailure> => {
  const out = nameFailures(plan)
  const L = ctx.layerMemory.length
  const stages = plan.stages
  if (stages.length === 0) return [...out, { _tag: "NoStages", message: "the plan has no stages" }]

  stages.forEach((s, i) => {
    const range = { stage: i, start: s.start, end: s.end }
    if (!Number.isSafeInteger(s.start) || !Number.isSafeInteger(s.end))
      out.push({ _tag: "NonIntegerIndex", ...range, message: `stage ${i} on ${s.node}: layer indices ${s.start}..${s.end} must be integers` })
    else if (s.start < 0 || s.end < 0)
      out.push({ _tag: "NegativeIndex", ...range, message: `stage ${i} on ${s.node}: layer indices ${s.start}..${s.end} must not be negative` })
    else if (s.start > s.end)
      out.push({ _tag: "ReversedRange", ...range, message: `stage ${i} on ${s.node}: start ${s.start} is after end ${s.end}` })
  })

  // Coverage, judged on the well-formed stages in plan order.
  let prev: { i: number; s: DraftStage } | undefined
  let maxEnd = -1
  stages.forEach((s, i) => {
    if (!wellFormed(s)) return
    if (prev === undefined) {
      if (s.start > 0) out.push({ _tag: "Gap", after: -1, before: s.start, message: `${missing(-1, s.start)}: the first stage starts at ${s.start}` })
    } else if (s.start < prev.s.start)
      out.push({ _tag: "OutOfOrder", stage: i, start: s.start, previousStart: prev.s.start, message: `stage ${i} starts at ${s.start}, before stage ${prev.i} (${prev.s.start}): stages must follow layer order` })
    else if (s.start <= prev.s.end) {
      const to = Math.min(prev.s.end, s.end)
      out.push({ _tag: "Overlap", stage: i, from: s.start, to, message: `stage ${i} and stage ${prev.i} both hold layer${s.start === to ? ` ${to}` : `s ${s.start}..${to}`}` })
    } else if (s.start > prev.s.end + 1)
      out.push({ _tag: "Gap", after: prev.s.end, before: s.start, message: `${missing(prev.s.end, s.start)}: gap after layer ${prev.s.end}` })
    prev = { i, s }
    maxEnd = Math.max(maxEnd, s.end)
  })
  if (prev !== undefined && maxEnd + 1 !== L)
    out.push({
      _tag: "LayerCountMismatch",
      layers: L,
      covered: maxEnd + 1,
      message: `the plan covers layers 0..${maxEnd} but the model has ${L} layer${L === 1 ? "" : "s"} (0..${L - 1})`
    })

  // Devices: distinct and known.
  const byNode = new Map<string, number[]>()
  stages.forEach((s, i) => {
    const at = byNode.get(s.node)
    if (at) at.push(i)
    else byNode.set(s.node, [i])
  })
  for (const [node, at] of byNode)
    if (at.length > 1) out.push({ _tag: "DuplicateDevice", node, stages: at, message: `node ${node} holds stages ${at.join(", ")}: each device may hold one stage` })
  stages.forEach((s, i) => {
    if (!ctx.registry.has(s.node)) out.push({ _tag: "UnknownDevice", node: s.node, stage: i, message: `stage ${i}: node ${JSON.stringify(s.node)} is not registered` })
  })

  // Memory, for stages whose range and device are known.
  stages.forEach((s, i) => {
    const dev = ctx.registry.get(s.node)
    if (dev === undefined || !wellFormed(s) || s.end >= L) return
    let needs = 0
    for (let l = s.start; l <= s.end; l++) needs += ctx.layerMemory[l]!
    if (needs > dev.memory)
      out.push({ _tag: "OutOfMemory", stage: i, node: s.node, needs, has: dev.memory, message: `stage ${i} on ${s.node} needs memory ${needs}, the device has ${dev.memory}` })
  })
  return out
}

/** The plan itself when valid, otherwise every failure at once. */
export const validatePlan = (plan: PlanDraft, ctx: ValidationContext): Either.Either<Plan, PlanInvalid> => {
  const failures = planFailures(plan, ctx)
  // No failure means every field meets Plan's refinements (ids non-empty, indices non-negative integers).
  return failures.length === 0 ? Either.right(plan as Plan) : Either.left(PlanInvalid.of({ planId: planIdLabel(plan.planId), failures }))
}

// ---------------------------------------------------------------------------------------------
// CLI stage syntax: `node:start:end`, inclusive layer range.

export const StageSyntaxKind = Schema.Literal("MissingParts", "TooManyParts", "EmptyNode", "NotAnInteger", "Negative")
export type StageSyntaxKind = typeof StageSyntaxKind.Type

export class StageSyntaxError extends Schema.TaggedError<StageSyntaxError>()("StageSyntaxError", {
  input: Schema.String,
  kind: StageSyntaxKind,
  message: Schema.String
}) {
  static of({ input, kind, reason }: { readonly input: string; readonly kind: StageSyntaxKind; readonly reason: string }): StageSyntaxError {
    return new StageSyntaxError({ input, kind, message: `bad stage ${JSON.stringify(input)}: ${reason} (expected node:start:end, e.g. n1:0:11)` })
  }
}

const INTEGER = /^-?[0-9]+$/

/** Parse `n1:0:11` into a stage; refuses anything else with the reason. */
export const parseStage = (input: string): Either.Either<PlanStage, StageSyntaxError> => {
  const fail = (kind: StageSyntaxKind, reason: string) => Either.left(StageSyntaxError.of({ input, kind, reason }))
  const parts = input.split(":")
  if (parts.length < 3) return fail("MissingParts", `has ${parts.length} part${parts.length === 1 ? "" : "s"}, needs 3`)
  if (parts.length > 3) return fail("TooManyParts", `has ${parts.length} parts, needs 3`)
  const [node, a, b] = parts as [string, string, string]
  if (node.length === 0) return fail("EmptyNode", "the node id is empty")
  const nums: number[] = []
  for (const [name, text] of [["start", a], ["end", b]] as const) {
    if (!INTEGER.test(text)) return fail("NotAnInteger", `${name} ${JSON.stringify(text)} is not an integer`)
    const n = Number(text)
    if (!Number.isSafeInteger(n)) return fail("NotAnInteger", `${name} ${text} is too large`)
    if (n < 0) return fail("Negative", `${name} ${text} is negative`)
    nums.push(n)
  }
  return Either.right({ node, start: nums[0]!, end: nums[1]! })
}

/** Parse every stage argument; all errors, not just the first. */
export const parseStages = (inputs: ReadonlyArray<string>): Either.Either<ReadonlyArray<PlanStage>, ReadonlyArray<StageSyntaxError>> => {
  const ok: PlanStage[] = []
  const bad: StageSyntaxError[] = []
  for (const s of inputs) Either.match(parseStage(s), { onLeft: (e) => bad.push(e), onRight: (v) => ok.push(v) })
  return bad.length > 0 ? Either.left(bad) : Either.right(ok)
}
