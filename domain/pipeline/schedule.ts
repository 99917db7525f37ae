import { Either, Schema } from "effect"
import { maxOf } from "./extremes.ts"

/** One step of a stage: the forward (F) or backward (B) pass of one microbatch. */
export interface Op {
  readonly op: "F" | "B"
  readonly mb: number
}

/** Per stage, the ops it runs, in order. */
export type Schedule = ReadonlyArray<ReadonlyArray<Op>>

export class InvalidSchedule extends Schema.TaggedError<InvalidSchedule>()("InvalidSchedule", { message: Schema.String }) {
  static of(reason: string): InvalidSchedule {
    return new InvalidSchedule({ message: `invalid schedule: ${reason}` })
  }
}

/** Forwards stage s of p runs before its first backward: min(p − s − 1, m). */
export const warmupCount = (stage: number, stages: number, microbatches: number): number =>
  Math.max(0, Math.min(stages - stage - 1, microbatches))

/**
 * 1F1B for stage s of p with m microbatches: w = min(p−s−1, m) warm-up forwards, then the steady
 * state alternating one forward and one backward, then the cool-down backwards. Microbatches go
 * forward and backward in order 0..m−1. At most w + 1 ≤ p − s microbatches are ever in flight,
 * which is what bounds a stage's activation memory.
 */
export const stageOps = (stage: number, stages: number, microbatches: number): ReadonlyArray<Op> => {
  const w = warmupCount(stage, stages, microbatches)
  const ops: Op[] = []
  for (let i = 0; i < w; i++) ops.push({ op: "F", mb: i })
  for (let i = 0; i < microbatches - w; i++) {
    ops.push({ op: "F", mb: w + i })
    ops.push({ op: "B", mb: i })
  }
  for (let i = microbatches - w; i < microbatches; i++) ops.push({ op: "B", mb: i })
  return ops
}

/**
 * The most ops (stages × microbatches × 2) a schedule may have. Every op is an object in memory
 * and a line of `blyan plan schedule --json`, about 55 bytes there: 2M ops print as 110 MB
 * and take some 600 MB of heap, while 10M ops pass V8's largest string and 10^10 exhaust the heap.
 */
export const MAX_SCHEDULE_OPS = 2_000_000

const checkCounts = (stages: number, microbatches: number): Either.Either<void, InvalidSchedule> => {
  const fail = (reason: string) => Either.left(InvalidSchedule.of(reason))
  if (!Number.isSafeInteger(stages) || stages < 1) return fail(`stages must be an integer ≥ 1, got ${stages}`)
  if (!Number.isSafeInteger(microbatches) || microbatches < 1) return fail(`microbatches must be an integer ≥ 1, got ${microbatches}`)
  const ops = BigInt(stages) * BigInt(microbatches) * 2n
  if (ops > BigInt(MAX_SCHEDULE_OPS))
    return fail(`${stages} stages × ${microbatches} microbatches × 2 = ${ops} ops, more than the ${MAX_SCHEDULE_OPS} a schedule may have`)
  return Either.right(undefined)
}

/** The whole 1F1B schedule: one op list per stage, refused (not built) past `MAX_SCHEDULE_OPS`. */
export const oneFOneB = (stages: number, microbatches: number): Either.Either<Schedule, InvalidSchedule> =>
  Either.map(checkCounts(stages, microbatches), () => Array.from({ length: stages }, (_, s) => stageOps(s, stages, microbatches)))

export interface Timed {
  readonly op: "F" | "B"
  readonly mb: number
  readonly start: number
  readonly end: number
}

export interface Simulation {
  /** When the last op of any stage ends. */
  readonly makespan: number
  /** Per stage, its ops with their start and end times. */
  readonly timeline: ReadonlyArray<ReadonlyArray<Timed>>
}

/** A per-stage duration, or one for all stages. */
export type Durations = number | ReadonlyArray<number>

const durationAt = (d: Durations, s: number): number => (typeof d === "number" ? d : d[s]!)

/**
 * Discrete-event simulation: each stage runs its ops in order, one at a time, each as early as
 * its dependencies allow. F of mb on stage s needs F of mb on s−1; B of mb on stage s needs B of
 * mb on s+1 and the stage's own F of mb. f and b are forward and backward durations (one for
 * all stages, or one per stage). A schedule whose dependencies can never be met is an error
 * naming the stuck stages, never a hang.
 */
export const simulate = (schedule: Schedule, f: Durations, b: Durations): Either.Either<Simulation, InvalidSchedule> => {
  const p = schedule.length
  const fail = (reason: string) => Either.left(InvalidSchedule.of(reason))
  if (p === 0) return fail("no stages")
  for (const [name, d] of [["f", f], ["b", b]] as const) {
    if (typeof d !== "number" && d.length !== p) return fail(`${name} has ${d.length} durations for ${p} stages`)
    for (let s = 0; s < p; s++) {
      const x = durationAt(d, s)
      if (!(Number.isFinite(x) && x >= 0)) return fail(`${name} duration of stage ${s} must be finite and ≥ 0, got ${x}`)
    }
  }
  // finish times per stage per microbatch
  const doneF: Array<Map<number, number>> = schedule.map(() => new Map())
  const doneB: Array<Map<number, number>> = schedule.map(() => new Map())
  const timeline: Timed[][] = schedule.map(() => [])
  const next = new Array<number>(p).fill(0)
  const free = new Array<number>(p).fill(0)
  let remaining = schedule.reduce((n, ops) => n + ops.length, 0)
  while (remaining > 0) {
    let progressed = false
    for (let s = 0; s < p; s++) {
      for (;;) {
        const o = schedule[s]![next[s]!]
        if (o === undefined) break
        const own = o.op === "F" ? doneF[s]! : doneB[s]!
        if (own.has(o.mb)) return fail(`stage ${s} runs ${o.op} of microbatch ${o.mb} twice`)
        let ready: number | undefined = 0
        if (o.op === "F") ready = s === 0 ? 0 : doneF[s - 1]!.get(o.mb)
        else {
          const mine = doneF[s]!.get(o.mb)
          const after = s === p - 1 ? 0 : doneB[s + 1]!.get(o.mb)
          ready = mine === undefined || after === undefined ? undefined : Math.max(mine, after)
        }
        if (ready === undefined) break
        const start = Math.max(ready, free[s]!)
        const end = start + durationAt(o.op === "F" ? f : b, s)
        own.set(o.mb, end)
        timeline[s]!.push({ op: o.op, mb: o.mb, start, end })
        free[s] = end
        next[s]!++
        remaining--
        progressed = true
      }
    }
    if (!progressed) {
      const stuck = schedule.flatMap((ops, s) => (next[s]! < ops.length ? [`stage ${s} at ${ops[next[s]!]!.op}${ops[next[s]!]!.mb}`] : []))
      return fail(`deadlock: ${stuck.join(", ")} wait for ops that never run`)
    }
  }
  return Either.right({ makespan: Math.max(0, maxOf(free)), timeline })
}
