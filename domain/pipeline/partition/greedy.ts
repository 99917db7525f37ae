import { Either } from "effect"
import { checkPartitionInput } from "./input.ts"
import { bottleneckOver, type PlacedStage } from "./objective.ts"
import type { InvalidPartitionInput, Partition, PartitionInput } from "./types.ts"

export interface GreedyPartition extends Pick<Partition, "stages" | "bottleneck"> {
  /** Whether every stage happens to fit its device's memory: the baseline does not look. */
  readonly fitsMemory: boolean
}

/**
 * BASELINE ONLY, kept to measure the exact partitioner against: the original's split, which
 * gives each of the n devices, in the given order, an equal share (≈ total/n) of the compute
 * whatever its speed, and ignores memory. A stage closes once the running cost reaches
 * (k+1)·total/n; the last device takes whatever is left; with fewer layers than devices the
 * last devices stay idle. Its bottleneck is under the input's objective, communication included.
 * Never use it to plan.
 */
export const greedyPartition = (input: PartitionInput): Either.Either<GreedyPartition, InvalidPartitionInput> => {
  const checked = checkPartitionInput(input)
  if (Either.isLeft(checked)) return Either.left(checked.left)
  const { layers, devices } = input
  const n = devices.length
  const total = layers.reduce((s, l) => s + l.cost, 0)
  const stages: Array<PlacedStage & { memory: number }> = []
  let start = 0
  let cum = 0
  let memory = 0
  for (let i = 0; i < layers.length; i++) {
    cum += layers[i]!.cost
    memory += layers[i]!.memory
    const k = stages.length
    const last = i === layers.length - 1
    if (last || (k < n - 1 && cum >= ((k + 1) * total) / n)) {
      stages.push({ device: devices[k]!, start, end: i, memory })
      start = i + 1
      memory = 0
    }
  }
  return Either.right({
    stages: stages.map(({ device, start, end }) => ({ device: device.id, start, end })),
    bottleneck: bottleneckOver(input, stages),
    fitsMemory: stages.every((s) => s.memory <= s.device.memory)
  })
}
