/**
 * The port through which the model runs ONNX graphs. The onnxruntime adapter implements it
 * (adapters/executor/onnxruntime.ts); the device is a setting of the adapter, not of the caller.
 */
import { Context, Data, type Effect } from "effect"

export type Device = "cpu" | "cuda"

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
export class ExecutionProviderUnavailable extends Data.TaggedError("ExecutionProviderUnavailable")<{
  readonly device: Device
  readonly reason: string
}> {
  override get message() {
    return `execution provider ${this.device} is unavailable: ${this.reason}`
  }
}

/** A graph could not be loaded or run (invalid model, bad feeds, kernel failure). */
export class ExecutionFailed extends Data.TaggedError("ExecutionFailed")<{
  readonly graph: string
  readonly reason: string
}> {
  override get message() {
    return `running ${this.graph} failed: ${this.reason}`
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
