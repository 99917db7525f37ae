/**
 * Whether a checkpoint's tensors are exactly what its config describes: every tensor of the
 * family's layout present with its shape, nothing else, and (read one at a time) no NaN or
 * infinity. Checked before anything is recorded, so a bad checkpoint is refused naming the tensor.
 */
import type { StoredTensorInfo } from "../../ports/checkpoint-source.ts"
import type { StDType } from "../safetensors.ts"
import type { FamilySpec } from "./config.ts"
import { checkpointLayout } from "./layout.ts"

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const shapeText = (shape: ReadonlyArray<number>) => `[${shape.join(", ")}]`

/** Why `tensors` do not fit `spec`'s layout, if they do not: the first missing, misshaped or unexpected tensor. */
export const layoutProblem = (spec: FamilySpec, tensors: ReadonlyMap<string, StoredTensorInfo>): string | undefined => {
  const expected = new Set<string>()
  for (const { part, tensors: wanted } of checkpointLayout(spec))
    for (const t of wanted) {
      expected.add(t.checkpointName)
      const got = tensors.get(t.checkpointName)
      if (got === undefined) return `the checkpoint has no tensor "${t.checkpointName}" (of ${part})`
      if (got.shape.length !== t.shape.length || got.shape.some((n, i) => n !== t.shape[i]))
        return `tensor "${t.checkpointName}" is ${shapeText(got.shape)}, not ${shapeText(t.shape)} as config.json implies`
    }
  for (const name of tensors.keys()) if (!expected.has(name)) return `tensor "${name}" is not part of a ${spec.family} model as config.json describes it`
  return undefined
}

/**
 * The index of the first NaN or infinity in a tensor's stored bytes, if any: a value whose
 * exponent bits are all ones, read straight from the bits (no conversion).
 */
export const firstNonFinite = (dtype: StDType, bytes: Uint8Array): number | undefined => {
  const width = dtype === "F32" ? 4 : 2
  // Typed views where the bytes allow (aligned, a little-endian host): a DataView call per value is several times slower.
  if (LITTLE_ENDIAN && bytes.byteOffset % width === 0) {
    const values = width === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)
    const mask = dtype === "F32" ? 0x7f800000 : dtype === "F16" ? 0x7c00 : 0x7f80
    for (let i = 0; i < values.length; i++) if ((values[i]! & mask) === mask) return i
    return undefined
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (dtype === "F32") {
    for (let i = 0; i < bytes.length / 4; i++) if ((view.getUint32(i * 4, true) & 0x7f800000) === 0x7f800000) return i
    return undefined
  }
  const mask = dtype === "F16" ? 0x7c00 : 0x7f80
  for (let i = 0; i < bytes.length / 2; i++) if ((view.getUint16(i * 2, true) & mask) === mask) return i
  return undefined
}
