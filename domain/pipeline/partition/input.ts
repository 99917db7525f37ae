import { Either } from "effect"
import { deviceKinds, rateOf } from "./problem.ts"
import { InvalidPartitionInput, PartitionTooLarge, type PartitionInput } from "./types.ts"

const isNonNegativeFinite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0
const isPositiveFinite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x > 0

type Refusal = Either.Either<void, InvalidPartitionInput>

const refuse = (reason: string): Refusal => Either.left(InvalidPartitionInput.of(reason))

const checkLayers = (layers: PartitionInput["layers"]): Refusal => {
  let total = 0
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!
    if (!isNonNegativeFinite(l.cost)) return refuse(`layer ${i} cost must be a finite number ≥ 0, got ${String(l.cost)}`)
    if (!isNonNegativeFinite(l.memory)) return refuse(`layer ${i} memory must be a finite number ≥ 0, got ${String(l.memory)}`)
    total += l.cost
  }
  if (!Number.isFinite(total)) return refuse("the total layer cost overflows")
  return Either.right(undefined)
}

const checkDevices = (input: PartitionInput): Refusal => {
  const seen = new Set<string>()
  for (let d = 0; d < input.devices.length; d++) {
    const dev = input.devices[d]!
    if (typeof dev.id !== "string" || dev.id.length === 0) return refuse(`device ${d} has no id`)
    if (seen.has(dev.id)) return refuse(`device id ${JSON.stringify(dev.id)} appears more than once`)
    seen.add(dev.id)
    if (!isPositiveFinite(dev.speed)) return refuse(`device ${dev.id} speed must be a finite number > 0, got ${String(dev.speed)}`)
    if (!isNonNegativeFinite(dev.memory)) return refuse(`device ${dev.id} memory must be a finite number ≥ 0, got ${String(dev.memory)}`)
    if (dev.bandwidth !== undefined && !isPositiveFinite(dev.bandwidth))
      return refuse(`device ${dev.id} bandwidth must be a finite number > 0 (bytes per second), got ${String(dev.bandwidth)}`)
    // a middle stage sends two boundaries
    if (!Number.isFinite(2 * rateOf(input, dev).link))
      return refuse(`device ${dev.id} bandwidth ${String(dev.bandwidth)} is too small to send ${String(input.boundaryBytes)} bytes in a finite time`)
  }
  return Either.right(undefined)
}

/** Every reason the input cannot be planned at all, before any search. */
export const checkPartitionInput = (input: PartitionInput): Refusal => {
  if (!Array.isArray(input.layers) || input.layers.length === 0) return refuse("there are no layers")
  if (!Array.isArray(input.devices) || input.devices.length === 0) return refuse("there are no devices")
  if (input.boundaryBytes !== undefined && !isNonNegativeFinite(input.boundaryBytes))
    return refuse(`boundaryBytes must be a finite number ≥ 0, got ${String(input.boundaryBytes)}`)
  return Either.flatMap(checkLayers(input.layers), () => checkDevices(input))
}

/**
 * The largest inputs `partition` takes; beyond them it refuses up front rather than run for
 * minutes or exhaust memory. A kind is a distinct (speed, memory, link time) triple, the link
 * time being 0 when boundaries carry no bytes: the search enumerates kinds and only counts the
 * devices of one kind. Each threshold probed builds tables of about 24 bytes per layer per kind,
 * and a search step costs up to kinds² comparisons; within these bounds a call (search budget
 * included) ends within about half a minute and under 1 GiB on one core, where 64 kinds × 15,625
 * layers took 100 s and 1.7 GiB and 100 × 100 did not end.
 */
export const PARTITION_LIMITS = {
  /** Devices in the input. */
  devices: 1_000_000,
  /** Distinct device kinds; the exact search is exponential in them. */
  kinds: 32,
  /** Layers × kinds: the size of each threshold's tables. */
  layerKinds: 250_000,
  /**
   * The pruned search (used where the dense table would be too large) recurses once per stage,
   * and a plan has at most min(layers, devices) stages: past this the call stack could overflow.
   */
  searchStages: 1024
} as const

/**
 * Refuses, with `PartitionTooLarge`, an input over `PARTITION_LIMITS`; the input must already be
 * well formed. `denseStates` is the largest dense table `partition` builds: where the table
 * (the product over kinds of count + 1 states) would be larger, the pruned search plans instead.
 */
export const checkPartitionSize = (input: PartitionInput, denseStates: number): Either.Either<void, PartitionTooLarge> => {
  const layers = input.layers.length
  const devices = input.devices.length
  const kinds = deviceKinds(input)
  const distinct = (input.boundaryBytes ?? 0) > 0 ? "speed, memory and bandwidth" : "speed and memory"
  const tooLarge = (reason: string) => Either.left(PartitionTooLarge.of({ layers, devices, kinds: kinds.length, reason }))
  if (devices > PARTITION_LIMITS.devices) return tooLarge(`${devices} devices, at most ${PARTITION_LIMITS.devices}`)
  if (kinds.length > PARTITION_LIMITS.kinds)
    return tooLarge(`${kinds.length} device kinds (distinct ${distinct}), at most ${PARTITION_LIMITS.kinds}; group devices of similar ${distinct} into fewer kinds`)
  if (layers * kinds.length > PARTITION_LIMITS.layerKinds)
    return tooLarge(`${layers} layers × ${kinds.length} device kinds = ${layers * kinds.length}, at most ${PARTITION_LIMITS.layerKinds}`)
  const searched = kinds.reduce((states, k) => states * (k.length + 1), 1) > denseStates
  if (searched && Math.min(layers, devices) > PARTITION_LIMITS.searchStages)
    return tooLarge(`${layers} layers on ${devices} devices of ${kinds.length} kinds need the pruned search, which plans at most ${PARTITION_LIMITS.searchStages} stages; use fewer kinds or devices`)
  return Either.right(undefined)
}
