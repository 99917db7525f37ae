/**
 * The port through which the model runs ONNX graphs. The onnxruntime adapter implements it
 * (adapters/executor/onnxruntime.ts); the device is a setting of the adapter, not of the caller.
 */
import { Context, Schema, type Effect } from "effect"

export const Device = Schema.Literal("cpu", "cuda")
export type Device = typeof Device.Type

export type TensorType = "float32" | "float64" | "int64"

export type TensorData = Float32Array | Float64Array | BigInt64Array

export interface TensorValue {
  readonly type: TensorType
  readonly dims: ReadonlyArray<number>
  readonly data: TensorData
}

/** A serialised ONNX model; `name` is for messages only, the bytes identify it. */
export interface OnnxModel {
  readonly name: string
  readonly bytes: Uint8Array
}

/** The requested execution provider cannot be used on this machine. */
export class ExecutionProviderUnavailable extends Schema.TaggedError<ExecutionProviderUnavailable>()("ExecutionProviderUnavailable", {
  device: Device,
  message: Schema.String
}) {
  static of({ device, reason }: { readonly device: Device; readonly reason: string }): ExecutionProviderUnavailable {
    return new ExecutionProviderUnavailable({ device, message: `execution provider ${device} is unavailable: ${reason}` })
  }
}

/** A graph could not be loaded or run (invalid model, bad feeds, kernel failure). */
export class ExecutionFailed extends Schema.TaggedError<ExecutionFailed>()("ExecutionFailed", { graph: Schema.String, message: Schema.String }) {
  static of({ graph, reason }: { readonly graph: string; readonly reason: string }): ExecutionFailed {
    return new ExecutionFailed({ graph, message: `running ${graph} failed: ${reason}` })
  }
}

export interface ExecutorApi {
  readonly device: Device
  /** Runs `model` on `feeds` and returns the named outputs. */
  readonly run: (
    model: OnnxModel,
    feeds: Readonly<Record<string, TensorValue>>,
    fetches: ReadonlyArray<string>
  ) => Effect.Effect<Record<string, TensorValue>, ExecutionFailed>
  /** Session cache figures (for metrics and tests). */
  readonly stats: Effect.Effect<ExecutorStats>
}

export interface ExecutorStats {
  /** Distinct graphs with a live session. */
  readonly sessions: number
  /** Sessions created so far (a cache miss each). */
  readonly loads: number
}

export class Executor extends Context.Tag("blyan/Executor")<Executor, ExecutorApi>() {}
