import { Data } from "effect"
import type { LayerLoad } from "../cost.ts"

/** The partitioner's input, its result, and every way it refuses. */

export interface Device {
  readonly id: string
  readonly speed: number
  readonly memory: number
}

export interface PartitionInput {
  readonly layers: ReadonlyArray<LayerLoad>
  readonly devices: ReadonlyArray<Device>
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
}

export class InvalidPartitionInput extends Data.TaggedError("InvalidPartitionInput")<{ readonly reason: string }> {
  override get message() {
    return `invalid partition input: ${this.reason}`
  }
}

/** The input is well formed but larger than the partitioner serves (see `MAX_PARTITION_SIZE`). */
export class PartitionTooLarge extends Data.TaggedError("PartitionTooLarge")<{
  readonly layers: number
  readonly devices: number
  readonly kinds: number
  readonly reason: string
}> {
  override get message() {
    return `partition input too large: ${this.reason}`
  }
}

export class PartitionInfeasible extends Data.TaggedError("PartitionInfeasible")<{ readonly reason: string }> {
  override get message() {
    return `no partition fits: ${this.reason}`
  }
}

/**
 * The exact search is exponential in the number of device kinds (distinct speed and memory) in
 * the worst case; past a deterministic work budget it stops rather than hang.
 */
export class PartitionTooHard extends Data.TaggedError("PartitionTooHard")<{ readonly kinds: number; readonly steps: number }> {
  override get message() {
    return `no proven-optimal plan within ${this.steps} search steps over ${this.kinds} device kinds; group devices of similar speed and memory into fewer kinds (the search is exact, and exponential in the number of kinds)`
  }
}

export type PartitionError = InvalidPartitionInput | PartitionTooLarge | PartitionInfeasible | PartitionTooHard
