import { Either } from "effect"
import { maxOf } from "../extremes.ts"
import { checkPartitionInput } from "./input.ts"
import { prefix, rateOf, stageTime } from "./problem.ts"
import { InvalidPartitionInput, type Device, type PartitionInput, type PartitionStage } from "./types.ts"

/** A stage (inclusive layer range) with its device in hand. */
export interface PlacedStage {
  readonly start: number
  readonly end: number
  readonly device: Device
}

/** Each stage's `stageTime`, for stages of a well-formed input, each range within the chain. */
const stageTimesOver = (input: PartitionInput, stages: ReadonlyArray<PlacedStage>): ReadonlyArray<number> => {
  const chain = { L: input.layers.length, cost: prefix(input.layers.map((l) => l.cost)) }
  return stages.map((s) => stageTime(chain, s.start, s.end + 1, rateOf(input, s.device)))
}

/** The largest `stageTime` over stages of a well-formed input, each range within the chain. */
export const bottleneckOver = (input: PartitionInput, stages: ReadonlyArray<PlacedStage>): number => maxOf(stageTimesOver(input, stages))

/**
 * Each stage's time under the input's objective, the `stageTime` the partitioner minimises,
 * whoever made the stages: to compare plans, e.g. one made ignoring communication. It reads only
 * times: memory, coverage and devices used twice are the plan's own business.
 */
export const stageTimesOf = (input: PartitionInput, stages: ReadonlyArray<PartitionStage>): Either.Either<ReadonlyArray<number>, InvalidPartitionInput> => {
  const checked = checkPartitionInput(input)
  if (Either.isLeft(checked)) return Either.left(checked.left)
  const refuse = (reason: string) => Either.left(InvalidPartitionInput.of(reason))
  if (stages.length === 0) return refuse("there are no stages")
  const L = input.layers.length
  const byId = new Map(input.devices.map((d) => [d.id, d]))
  const placed: PlacedStage[] = []
  for (const [j, s] of stages.entries()) {
    const device = byId.get(s.device)
    if (device === undefined) return refuse(`stage ${j} is on ${JSON.stringify(s.device)}, no device of the input`)
    if (!(Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start <= s.end && s.end < L))
      return refuse(`stage ${j} holds layers ${s.start}..${s.end}, not a range within 0..${L - 1}`)
    placed.push({ start: s.start, end: s.end, device })
  }
  return Either.right(stageTimesOver(input, placed))
}

/** The bottleneck of any stages under the input's objective (see `stageTimesOf`). */
export const bottleneckOf = (input: PartitionInput, stages: ReadonlyArray<PartitionStage>): Either.Either<number, InvalidPartitionInput> =>
  Either.map(stageTimesOf(input, stages), maxOf)
