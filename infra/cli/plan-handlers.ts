/**
 * What the `plan` subcommands do. Loaded by those commands alone (see plan-commands.ts): the
 * partitioner, the plan schemas and the planner stay out of every other command's start.
 */
import { Effect, Either, Option } from "effect"
import { ClusterFile } from "../../domain/pipeline/cluster.ts"
import { maxOf } from "../../domain/pipeline/extremes.ts"
import { greedyPartition, partition, stageTimesOf } from "../../domain/pipeline/partition.ts"
import { derivedPlanId, epochIdProblem, planIdLabel, planIdRefusal, PlanDraft } from "../../domain/pipeline/plan.ts"
import { oneFOneB } from "../../domain/pipeline/schedule.ts"
import { parseStages, planFailures, validatePlan, validationContext, type PlanFailure } from "../../domain/pipeline/validate.ts"
import { PlansProjection, type PlanEntry } from "../../domain/projections/plans.ts"
import { foldStream } from "../../actors/command.ts"
import { completeCluster, planMemory, promotePlan, resolveCluster } from "../../actors/planner.ts"
import { readJsonFile, writeOutputFile } from "./files.ts"
import { CliFailure, emit, fail } from "./output.ts"

const readCluster = (file: Option.Option<string>) => (Option.isSome(file) ? readJsonFile(file.value, ClusterFile) : Effect.succeed(undefined))

/** The cluster file, if given, completed from the ledger; the ledger is opened only when needed. */
const clusterFrom = (file: Option.Option<string>) =>
  Effect.gen(function* () {
    const parsed = yield* readCluster(file)
    const complete = parsed && completeCluster(parsed)
    return complete ?? (yield* resolveCluster(parsed))
  })

const stageLine = (s: { readonly node?: string; readonly device?: string; readonly start: number; readonly end: number }) =>
  `${(s.node ?? s.device)!}:${s.start}:${s.end}`

// optimize ----------------------------------------------------------------------------------------

export const optimize = ({ json, input }: { readonly json: boolean; readonly input: string }) =>
  Effect.gen(function* () {
    const cluster = yield* clusterFrom(Option.some(input))
    const best = yield* partition(cluster)
    const greedy = Either.getOrUndefined(greedyPartition(cluster))
    yield* emit(json, { stages: best.stages, bottleneck: best.bottleneck, lowerBound: best.lowerBound, gap: best.gap }, () =>
      [
        ...best.stages.map((s, i) => `stage ${i}: ${s.device} layers ${s.start}..${s.end}`),
        best.gap === 0
          ? `bottleneck ${best.bottleneck} (optimal)`
          : `bottleneck ${best.bottleneck}: the best plan found within the search's budget; no plan is below ${best.lowerBound} (gap at most ${(best.gap * 100).toFixed(2)}%)`,
        ...(greedy ? [`(equal-share baseline: ${greedy.bottleneck}${greedy.fitsMemory ? "" : ", does not fit memory"})`] : []),
        `as stages: ${best.stages.map(stageLine).join(" ")}`
      ].join("\n")
    )
  })

// schedule ----------------------------------------------------------------------------------------

export const schedule = ({ json, stages, microbatches }: { readonly json: boolean; readonly stages: number; readonly microbatches: number }) =>
  Effect.gen(function* () {
    const ops = yield* Either.mapLeft(oneFOneB(stages, microbatches), (e) => new CliFailure({ message: e.message, exitCode: 2 }))
    yield* emit(json, { stages: ops }, () => ops.map((o, s) => `stage ${s}: ${o.map((x) => `${x.op}${x.mb}`).join(" ")}`).join("\n"))
  })

// snapshot ----------------------------------------------------------------------------------------

export const snapshot = ({
  json,
  epoch,
  round,
  stages,
  more,
  zero1,
  actCkpt,
  planId,
  out
}: {
  readonly json: boolean
  readonly epoch: string
  readonly round: string
  readonly stages: ReadonlyArray<string>
  readonly more: ReadonlyArray<string>
  readonly zero1: boolean
  readonly actCkpt: boolean
  readonly planId: Option.Option<string>
  readonly out: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const all = [...stages, ...more]
    if (all.length === 0) return yield* fail("--stages needs at least one node:start:end", 2)
    const parsed = parseStages(all)
    if (Either.isLeft(parsed)) return yield* fail(parsed.left.map((e) => e.message).join("\n"), 2)
    const epochProblem = epochIdProblem(epoch)
    if (epochProblem !== undefined) return yield* fail(`--${epochProblem}`, 2)
    if (round.length === 0) return yield* fail("--round must not be empty", 2)
    const body = { epoch, round, stages: parsed.right, zero1, actCkpt }
    const id = Option.getOrElse(planId, () => derivedPlanId(body))
    const idProblem = planIdRefusal(id, body)
    if (idProblem !== undefined) return yield* fail(`--${idProblem}`, 2)
    const plan = { planId: id, ...body }
    const text = JSON.stringify(plan, null, 2)
    if (Option.isNone(out)) return yield* emit(true, plan, () => text)
    yield* writeOutputFile(out.value, text + "\n")
    yield* emit(json, { planId: id, out: out.value }, () => `wrote plan ${id} to ${out.value}`)
  })

// validate / promote ------------------------------------------------------------------------------

const failureLines = (failures: ReadonlyArray<PlanFailure>) => failures.map((f) => `  ${f._tag}: ${f.message}`).join("\n")

type PlanFileArgs = { readonly json: boolean; readonly file: string; readonly cluster: Option.Option<string> }

export const validate = ({ json, file, cluster }: PlanFileArgs) =>
  Effect.gen(function* () {
    const draft = yield* readJsonFile(file, PlanDraft)
    const found = yield* clusterFrom(cluster)
    const ctx = validationContext(found)
    const failures = planFailures(draft, ctx)
    const label = planIdLabel(draft.planId)
    if (failures.length > 0) return yield* fail(`plan ${label} is invalid:\n${failureLines(failures)}`, 1, { planId: label, valid: false, failures })
    // A valid plan's stages are known ranges on known devices: its step time is what the partitioner minimises.
    const stageTimes = yield* stageTimesOf(found, draft.stages.map((s) => ({ device: s.node, start: s.start, end: s.end })))
    const result = { planId: draft.planId, valid: true, failures, stageTimes, bottleneck: maxOf(stageTimes) }
    yield* emit(json, result, () => `plan ${draft.planId} is valid: ${draft.stages.map(stageLine).join(" ")} over ${ctx.layerMemory.length} layers, bottleneck ${result.bottleneck}`)
  })

const entryView = (e: PlanEntry) => ({
  planId: e.plan.planId,
  epoch: e.plan.epoch,
  round: e.plan.round,
  status: e.status,
  stages: e.plan.stages,
  zero1: e.plan.zero1,
  actCkpt: e.plan.actCkpt,
  plannedSeq: e.plannedSeq,
  promotedSeq: e.promotedSeq,
  frozenSeq: e.frozenSeq
})

const entryLine = (e: PlanEntry) =>
  `${e.plan.planId}  ${e.plan.epoch}/${e.plan.round}  ${e.status.padEnd(8)} ${e.plan.stages.map(stageLine).join(" ")}${e.plan.zero1 ? " zero1" : ""}${e.plan.actCkpt ? " act-ckpt" : ""}`

export const promote = ({ json, file, cluster }: PlanFileArgs) =>
  Effect.gen(function* () {
    const draft = yield* readJsonFile(file, PlanDraft)
    const parsed = yield* readCluster(cluster)
    const ctx = validationContext(yield* resolveCluster(parsed))
    const r = yield* promotePlan(draft, ctx).pipe(
      Effect.catchTag("PlanInvalid", (e) =>
        fail(`plan ${e.planId} is invalid, nothing recorded:\n${failureLines(e.failures)}`, 1, { planId: e.planId, failures: e.failures })
      ),
      Effect.catchTag("PlanRefused", (e) => fail(`${e.message}; nothing recorded`, 1))
    )
    yield* emit(json, { ...entryView(r.entry), recorded: r.recorded }, () =>
      r.recorded
        ? `promoted plan ${r.entry.plan.planId} for ${r.entry.plan.epoch}/${r.entry.plan.round} (seq ${r.entry.promotedSeq}), frozen on chain A (seq ${r.entry.frozenSeq})`
        : `plan ${r.entry.plan.planId} was already promoted and frozen (seq ${r.entry.frozenSeq}); nothing recorded`
    )
  })

export const memory = ({
  json,
  file,
  cluster,
  microbatches,
  tokens,
  dataParallel
}: PlanFileArgs & { readonly microbatches: number; readonly tokens: Option.Option<number>; readonly dataParallel: number }) =>
  Effect.gen(function* () {
    const draft = yield* readJsonFile(file, PlanDraft)
    const found = yield* clusterFrom(cluster)
    const plan = yield* validatePlan(draft, validationContext(found))
    const r = yield* planMemory(plan, found.devices, { microbatches, tokens: Option.getOrUndefined(tokens), dataParallel })
    const d = r.decision
    yield* emit(json, { planId: plan.planId, tokens: r.tokens, microbatches, dataParallel, zero1: d.zero1, actCkpt: d.actCkpt, stages: d.stages }, () =>
      [
        ...d.stages.map(
          (s) => `stage ${s.stage} (${plan.stages[s.stage]!.node}): ${s.inFlight} microbatches in flight, ${s.bytes} bytes${s.zero1 ? ", ZeRO-1" : ""}${s.actCkpt ? ", activation checkpointing" : ""}`
        ),
        `plan needs: zero1 ${d.zero1}, act-ckpt ${d.actCkpt}${d.zero1 !== plan.zero1 || d.actCkpt !== plan.actCkpt ? ` (the plan says zero1 ${plan.zero1}, act-ckpt ${plan.actCkpt})` : ""}`
      ].join("\n")
    )
  })

// show / list -------------------------------------------------------------------------------------

export const show = ({ json, id }: { readonly json: boolean; readonly id: string }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", PlansProjection)
    const e = state.plans.get(id)
    if (!e) return yield* fail(`no plan ${id} on the ledger`)
    yield* emit(json, entryView(e), () =>
      [
        `plan ${id}: ${e.status} for epoch ${e.plan.epoch}, round ${e.plan.round}`,
        ...e.plan.stages.map((s, i) => `  stage ${i}: ${s.node} layers ${s.start}..${s.end}`),
        `  zero1 ${e.plan.zero1}, act-ckpt ${e.plan.actCkpt}`,
        `  planned seq ${e.plannedSeq}${e.promotedSeq !== undefined ? `, promoted seq ${e.promotedSeq}` : ""}${e.frozenSeq !== undefined ? `, frozen seq ${e.frozenSeq}` : ""}`
      ].join("\n")
    )
  })

export const list = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", PlansProjection)
    const entries = PlansProjection.view(state) as ReadonlyArray<PlanEntry>
    yield* emit(json, entries.map(entryView), () => entries.map(entryLine).join("\n") || "no plans")
  })
