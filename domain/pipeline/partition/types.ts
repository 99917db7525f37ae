import { Schema } from "effect"
import type { LayerLoad } from "../cost.ts"

/** The partitioner's input, its result, and every way it refuses. */

export interface Device {
  readonly id: string
  readonly speed: number
  readonly memory: number
  /** The device's link in bytes per second; absent, the link is no constraint (it sends in no time). */
  readonly bandwidth?: number
}

export interface PartitionInput {
  readonly layers: ReadonlyArray<LayerLoad>
  readonly devices: ReadonlyArray<Device>
  /**
   * Bytes crossing each stage boundary in each direction per training step (activations forward,
   * their gradients back, the same size). A stage pays for what it sends: boundaryBytes / bandwidth
   * per boundary it has, on top of its compute. Absent or 0: compute only.
   */
  readonly boundaryBytes?: number
}

/** One stage of a computed partition: inclusive layer range on a device (by id). */
export interface PartitionStage {
  readonly device: string
  readonly start: number
  readonly end: number
}

export interface Partition {
  readonly stages: ReadonlyArray<PartitionStage>
  readonly bottleneck: number
  /** No plan has a smaller bottleneck: equal to it when the plan is proven optimal. */
  readonly lowerBound: number
  /** (bottleneck − lowerBound) / lowerBound: 0 for a proven-optimal plan. */
  readonly gap: number
}

export class InvalidPartitionInput extends Schema.TaggedError<InvalidPartitionInput>()("InvalidPartitionInput", { message: Schema.String }) {
  static of = (reason: string): InvalidPartitionInput => new InvalidPartitionInput({ message: `invalid partition input: ${reason}` })
}

/** The input is well formed but larger than the partitioner serves (see `PARTITION_LIMITS`). */
export class PartitionTooLarge extends Schema.TaggedError<PartitionTooLarge>()("PartitionTooLarge", {
  layers: Schema.Number,
  devices: Schema.Number,
  kinds: Schema.Number,
  message: Schema.String
}) {
  static of({ reason, ...sizes }: { readonly layers: number; readonly devices: number; readonly kinds: number; readonly reason: string }): PartitionTooLarge {
    return new PartitionTooLarge({ ...sizes, message: `partition input too large: ${reason}` })
  }
}

export class PartitionInfeasible extends Schema.TaggedError<PartitionInfeasible>()("PartitionInfeasible", { message: Schema.String }) {
  static of = (reason: string): PartitionInfeasible => new PartitionInfeasible({ message: `no partition fits: ${reason}` })
}

/**
 * The exact search is exponential in the number of device kinds (distinct speed and memory) in
 * the worst case; past a deterministic work budget it stops rather than hang. With a plan found by
 * then, that plan is the answer (with its proven gap); this is only when none was.
 */
export class PartitionTooHard extends Schema.TaggedError<PartitionTooHard>()("PartitionTooHard", {
  kinds: Schema.Number,
  steps: Schema.Number,
  message: Schema.String
}) {
  static of({ kinds, steps }: { readonly kinds: number; readonly steps: number }): PartitionTooHard {
    return new PartitionTooHard({
      kinds,
      steps,
      message: `no plan found within ${steps} search steps over ${kinds} device kinds; group devices of similar speed and memory into fewer kinds (the search is exact, and exponential in the number of kinds)`
    })
  }
}

export type PartitionError = InvalidPartitionInput | PartitionTooLarge | PartitionInfeasible | PartitionTooHard
