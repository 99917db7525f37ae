import { Either, Schema } from "effect"
import type { ModelSpec } from "../model/spec.ts"
import { minOf } from "./extremes.ts"
import { ADAMW_BYTES_PER_PARAM, dtypeBytes, moeActivationBytesPerToken, moeLayerParams } from "./cost.ts"

/**
 * Memory policy: per pipeline stage, whether it needs ZeRO-1 (AdamW state sharded across the
 * data-parallel replicas of that stage) and/or activation checkpointing to fit its device.
 *
 * A stage holds: weights + gradients + AdamW state (two fp32 moments, 8 bytes per parameter,
 * divided by the replica count under ZeRO-1) + the activations of the microbatches in flight.
 * Under 1F1B stage s of p holds at most min(p − s, m) microbatches. With checkpointing each of
 * them keeps only its layer inputs, plus one layer's full activations while it is recomputed.
 *
 * Preference when several settings fit: neither, then ZeRO-1 (costs a parameter all-gather per
 * step, no compute), then checkpointing (costs about one extra forward), then both.
 */

export interface StageMemoryInput {
  /** Parameters the stage holds. */
  readonly params: number
  /** Bytes one microbatch leaves on the stage for its backward pass. */
  readonly activationBytes: number
  /** Bytes one microbatch leaves when checkpointed (the inputs of the stage's layers). */
  readonly checkpointBytes: number
  /** Extra peak bytes while one layer's activations are recomputed. */
  readonly recomputeBytes: number
  /** Memory of the stage's device, bytes. */
  readonly deviceMemory: number
}

export interface MemoryPolicyInput {
  readonly stages: ReadonlyArray<StageMemoryInput>
  readonly microbatches: number
  /** Replicas of every stage (data parallelism); ZeRO-1 only helps above 1. Default 1. */
  readonly dataParallel?: number
  /** Bytes per weight and per gradient. Default 4 (f32). */
  readonly weightBytes?: number
  readonly gradBytes?: number
}

export interface MemorySetting {
  readonly zero1: boolean
  readonly actCkpt: boolean
}

export interface StageMemoryDecision extends MemorySetting {
  readonly stage: number
  /** Microbatches this stage holds at its peak under 1F1B. */
  readonly inFlight: number
  /** Peak bytes with the chosen setting. */
  readonly bytes: number
}

export interface MemoryDecision {
  readonly stages: ReadonlyArray<StageMemoryDecision>
  /** Plan-wide flags: on when any stage needs them. */
  readonly zero1: boolean
  readonly actCkpt: boolean
}

export class InvalidMemoryInput extends Schema.TaggedError<InvalidMemoryInput>()("InvalidMemoryInput", { message: Schema.String }) {
  static of(reason: string): InvalidMemoryInput {
    return new InvalidMemoryInput({ message: `invalid memory input: ${reason}` })
  }
}

export const StageShortfall = Schema.Struct({
  stage: Schema.Number,
  /** The fewest bytes any setting needs. */
  needs: Schema.Number,
  has: Schema.Number
})
export interface StageShortfall extends Schema.Schema.Type<typeof StageShortfall> {}

export class MemoryDoesNotFit extends Schema.TaggedError<MemoryDoesNotFit>()("MemoryDoesNotFit", {
  stages: Schema.Array(StageShortfall),
  message: Schema.String
}) {
  static of({ stages }: { readonly stages: ReadonlyArray<StageShortfall> }): MemoryDoesNotFit {
    return new MemoryDoesNotFit({
      stages,
      message: stages.map((s) => `stage ${s.stage} needs at least ${s.needs} bytes even with ZeRO-1 and checkpointing, its device has ${s.has}`).join("; ")
    })
  }
}

/** Microbatches stage s of p holds at its peak under 1F1B. */
export const inFlight = (stage: number, stages: number, microbatches: number): number => Math.min(stages - stage, microbatches)

/** Settings in order of preference; ZeRO-1 is pointless without replicas to shard across. */
const settings = (dataParallel: number): ReadonlyArray<MemorySetting> =>
  dataParallel > 1
    ? [
        { zero1: false, actCkpt: false },
        { zero1: true, actCkpt: false },
        { zero1: false, actCkpt: true },
        { zero1: true, actCkpt: true }
      ]
    : [
        { zero1: false, actCkpt: false },
        { zero1: false, actCkpt: true }
      ]

/** Peak bytes of one stage under a setting. */
export const stageBytes = (
  stage: StageMemoryInput,
  held: number,
  setting: MemorySetting,
  options: { readonly dataParallel?: number; readonly weightBytes?: number; readonly gradBytes?: number } = {}
): number => {
  const dp = options.dataParallel ?? 1
  const state = stage.params * ((options.weightBytes ?? 4) + (options.gradBytes ?? 4))
  const optimizer = (stage.params * ADAMW_BYTES_PER_PARAM) / (setting.zero1 ? dp : 1)
  const activations = setting.actCkpt ? held * stage.checkpointBytes + stage.recomputeBytes : held * stage.activationBytes
  return state + optimizer + activations
}

const nonNegative = (x: number) => Number.isFinite(x) && x >= 0

/** Decide ZeRO-1 and checkpointing per stage; an error lists every stage that cannot fit at all. */
export const decideMemory = (input: MemoryPolicyInput): Either.Either<MemoryDecision, InvalidMemoryInput | MemoryDoesNotFit> => {
  const bad = (reason: string) => Either.left(InvalidMemoryInput.of(reason))
  const { stages, microbatches } = input
  const dataParallel = input.dataParallel ?? 1
  if (stages.length === 0) return bad("there are no stages")
  if (!Number.isSafeInteger(microbatches) || microbatches < 1) return bad(`microbatches must be an integer ≥ 1, got ${microbatches}`)
  if (!Number.isSafeInteger(dataParallel) || dataParallel < 1) return bad(`dataParallel must be an integer ≥ 1, got ${dataParallel}`)
  for (const [name, v] of [["weightBytes", input.weightBytes], ["gradBytes", input.gradBytes]] as const)
    if (v !== undefined && !nonNegative(v)) return bad(`${name} must be ≥ 0, got ${v}`)
  for (let s = 0; s < stages.length; s++) {
    const st = stages[s]!
    for (const k of ["params", "activationBytes", "checkpointBytes", "recomputeBytes", "deviceMemory"] as const)
      if (!nonNegative(st[k])) return bad(`stage ${s} ${k} must be a finite number ≥ 0, got ${st[k]}`)
  }

  const options = { dataParallel, weightBytes: input.weightBytes, gradBytes: input.gradBytes }
  const decided: StageMemoryDecision[] = []
  const short: StageShortfall[] = []
  stages.forEach((st, s) => {
    const held = inFlight(s, stages.length, microbatches)
    const tried = settings(dataParallel).map((set) => ({ set, bytes: stageBytes(st, held, set, options) }))
    const fit = tried.find((t) => t.bytes <= st.deviceMemory)
    if (fit) decided.push({ stage: s, inFlight: held, bytes: fit.bytes, ...fit.set })
    else short.push({ stage: s, needs: minOf(tried.map((t) => t.bytes)), has: st.deviceMemory })
  })
  if (short.length > 0) return Either.left(MemoryDoesNotFit.of({ stages: short }))
  return Either.right({ stages: decided, zero1: decided.some((d) => d.zero1), actCkpt: decided.some((d) => d.actCkpt) })
}

/**
 * Memory input of a `blyan-moe` stage of `layers` layers: every expert's parameters are held,
 * activations follow the spec's dtype, checkpointing keeps each layer's input (d per token).
 */
export const moeStageMemory = (spec: ModelSpec, layers: number, tokensPerMicrobatch: number, deviceMemory: number): StageMemoryInput => {
  const perLayerAct = moeActivationBytesPerToken(spec) * tokensPerMicrobatch
  return {
    params: layers * moeLayerParams(spec),
    activationBytes: layers * perLayerAct,
    checkpointBytes: layers * spec.dModel * dtypeBytes(spec) * tokensPerMicrobatch,
    recomputeBytes: layers > 0 ? perLayerAct : 0,
    deviceMemory
  }
}
