import type { BlockHeader } from "../ledger/events.ts"
import { sha256Hex } from "../ledger/hash.ts"
import { Either } from "effect"
import { WeightsMismatch, type DType, type Part } from "./tensor.ts"
import { parsePartName } from "./spec.ts"

/**
 * The well-known key that signs the genesis weights. Its seed is public on purpose: genesis blocks
 * draw their authority from being derived from the published spec, which anyone can recompute.
 */
export const GENESIS_CONTRIBUTOR_SEED = sha256Hex("blyan genesis contributor")

/** The block header for a part whose safetensors payload is `payload`. */
export const partHeader = (part: Part, payload: Uint8Array, dependsOn: ReadonlyArray<string>, contributor: string): Either.Either<BlockHeader, WeightsMismatch> =>
  blockHeader({
    name: part.name,
    part: part.name,
    payload: sha256Hex(payload),
    size: payload.length,
    tensors: Object.entries(part.tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    dependsOn,
    contributor
  })

/** The header of block `name` holding part `part` (of the built-in model, or of an imported one), from its payload's hash and size and its tensors. */
export const blockHeader = (h: {
  readonly name: string
  readonly part: string
  readonly payload: string
  readonly size: number
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly dtype: DType; readonly shape: ReadonlyArray<number> }>
  readonly dependsOn: ReadonlyArray<string>
  readonly contributor: string
}): Either.Either<BlockHeader, WeightsMismatch> => {
  const ref = parsePartName(h.part)
  if (ref === undefined) return Either.left(WeightsMismatch.of({ part: h.part, reason: "not a part name of blyan-moe" }))
  const tensors = [...h.tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return Either.right({
    name: h.name,
    kind: ref.kind,
    payload: h.payload,
    size: h.size,
    dtype: tensors[0]?.dtype ?? "f32",
    tensors: tensors.map((t) => ({ name: t.name, shape: [...t.shape] })),
    dependsOn: [...h.dependsOn],
    contributor: h.contributor
  })
}
