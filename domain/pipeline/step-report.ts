/**
 * What a pipeline trainer tells the network after each step (`Subjects.pipelineStats`), for the
 * explorer's metrics: how the step went, each stage's compute time, and what the transport met.
 * Reports are advisory, like heartbeats: not events, and anything that is not one is skipped.
 */
import { Either, Schema } from "effect"

const Count = Schema.Int.pipe(Schema.nonNegative())
const Millis = Schema.Number.pipe(Schema.nonNegative())

/** The transport's counts over a step: its chunks, and what went wrong on the way. */
export const TransportCounts = Schema.Struct({ chunks: Count, retries: Count, backpressureWaits: Count, unreachable: Count, damaged: Count, breakerOpened: Count })
export type TransportCounts = typeof TransportCounts.Type

export const noTransport: TransportCounts = { chunks: 0, retries: 0, backpressureWaits: 0, unreachable: 0, damaged: 0, breakerOpened: 0 }

const kinds = Object.keys(noTransport) as ReadonlyArray<keyof TransportCounts>
const combine = (a: TransportCounts, b: TransportCounts, f: (x: number, y: number) => number) =>
  Object.fromEntries(kinds.map((k) => [k, f(a[k], b[k])])) as TransportCounts

export const addTransport = (a: TransportCounts, b: TransportCounts): TransportCounts => combine(a, b, (x, y) => x + y)

/** What `to` has counted since `from`. */
export const transportSince = (from: TransportCounts, to: TransportCounts): TransportCounts => combine(to, from, (x, y) => x - y)

export const StepReport = Schema.Struct({
  epoch: Schema.String,
  step: Count,
  /** Through the pipeline; an attempt that failed (naming the stage at fault); or taken in one process after a fallback. */
  outcome: Schema.Literal("done", "failed", "alone"),
  /** A done step's stages, in order: the node and its compute time. */
  stages: Schema.Array(Schema.Struct({ node: Schema.String, busyMs: Millis })),
  wallMs: Millis,
  transport: TransportCounts,
  failed: Schema.optional(Schema.Struct({ stage: Count, node: Schema.String }))
})
export type StepReport = typeof StepReport.Type

const decode = Schema.decodeUnknownEither(Schema.parseJson(StepReport))

export const encodeStepReport = (r: StepReport): Uint8Array => new TextEncoder().encode(JSON.stringify(r))

/** A report from its bytes, or undefined for anything that is not one. */
export const decodeStepReport = (data: Uint8Array): StepReport | undefined => Either.getOrUndefined(decode(new TextDecoder().decode(data)))
