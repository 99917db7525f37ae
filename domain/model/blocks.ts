import type { BlockHeader } from "../ledger/events.ts"
import { sha256Hex } from "../ledger/hash.ts"
import { Either } from "effect"
import { WeightsMismatch, type Part } from "./tensor.ts"
import { parsePartName } from "./spec.ts"

/**
 * The well-known key that signs the genesis weights. Its seed is public on purpose: genesis blocks
 * draw their authority from being derived from the published spec, which anyone can recompute.
 */
export const GENESIS_CONTRIBUTOR_SEED = sha256Hex("blyan genesis contributor")

/** The block header for a part whose safetensors payload is `payload`. */
export const partHeader = (
  part: Part,
  payload: Uint8Array,
  dependsOn: ReadonlyArray<string>,
  contributor: string
): Either.Either<BlockHeader, WeightsMismatch> => {
  const ref = parsePartName(part.name)
  if (ref === undefined) return Either.left(WeightsMismatch.of({ part: part.name, reason: "not a part name of blyan-moe" }))
  const tensors = Object.entries(part.tensors).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Either.right({
    name: part.name,
    kind: ref.kind,
    payload: sha256Hex(payload),
    size: payload.length,
    dtype: tensors[0]?.[1].dtype ?? "f32",
    tensors: tensors.map(([name, t]) => ({ name, shape: [...t.shape] })),
    dependsOn: [...dependsOn],
    contributor
  })
}
