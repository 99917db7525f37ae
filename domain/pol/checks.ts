/**
 * What a candidate must pass before anyone spends an evaluation on it, each failure a named
 * rejection: the part's layout and dtype, finite values, a change from its base that is neither
 * nothing (a copy) nor out of bounds, and no exact or near copy of any block the part ever had
 * (the earlier block wins).
 */
import { Either } from "effect"
import type { ModelSpec } from "../model/spec.ts"
import { validatePart, type Part } from "../model/tensor.ts"

export type CheckSettings = {
  /** A candidate closer than this (relative L2) to an earlier block of the part is a copy of it. */
  readonly copyDistance: number
  /** The most a candidate may move from its base (relative L2). */
  readonly maxUpdateNorm: number
}

// A first training run moves small genesis weights by about their own size: 3 leaves room, a wholesale replacement does not fit.
export const defaultCheckSettings: CheckSettings = { copyDistance: 1e-3, maxUpdateNorm: 3 }

export type CheckFailure = {
  readonly reason: "shape" | "dtype" | "non-finite" | "copy" | "update-norm"
  readonly detail: string
}

/** A part's values, all tensors in name order, as one vector. */
const values = (p: Part): ReadonlyArray<Float32Array> => Object.keys(p.tensors).sort().map((n) => p.tensors[n]!.data)

const norm = (xs: ReadonlyArray<Float32Array>) => Math.sqrt(xs.reduce((s, x) => s + x.reduce((a, v) => a + v * v, 0), 0))

/** ‖a − b‖ / ‖b‖ over parts of one layout. */
export const relativeDistance = (a: Part, b: Part): number => {
  const va = values(a)
  const vb = values(b)
  let d = 0
  for (let t = 0; t < va.length; t++) for (let i = 0; i < va[t]!.length; i++) d += (va[t]![i]! - vb[t]![i]!) ** 2
  const scale = norm(vb)
  return scale === 0 ? (d === 0 ? 0 : Infinity) : Math.sqrt(d) / scale
}

/**
 * Why `candidate` may not be evaluated against `base`, given `earlier` (every block the part ever
 * had, oldest first, with its hash), if it may not.
 */
export const candidateProblem = (
  spec: ModelSpec,
  base: Part,
  candidate: Part,
  earlier: ReadonlyArray<{ readonly block: string; readonly part: Part }>,
  s: CheckSettings = defaultCheckSettings
): CheckFailure | undefined => {
  const layout = validatePart(spec, candidate)
  if (candidate.name !== base.name) return { reason: "shape", detail: `the candidate is part ${candidate.name}, not ${base.name}` }
  if (Either.isLeft(layout)) return { reason: "shape", detail: layout.left.message }
  for (const [n, t] of Object.entries(candidate.tensors))
    if (t.dtype !== base.tensors[n]!.dtype) return { reason: "dtype", detail: `tensor ${n} is ${t.dtype}, not ${base.tensors[n]!.dtype}` }
  for (const [n, t] of Object.entries(candidate.tensors))
    if (!t.data.every(Number.isFinite)) return { reason: "non-finite", detail: `tensor ${n} holds NaN or Infinity` }
  for (const e of earlier) {
    const d = relativeDistance(candidate, e.part)
    if (d < s.copyDistance) return { reason: "copy", detail: `a copy of block ${e.block} (relative distance ${d.toExponential(2)} < ${s.copyDistance})` }
  }
  const update = relativeDistance(candidate, base)
  if (update > s.maxUpdateNorm) return { reason: "update-norm", detail: `it moves ${update.toFixed(3)} from its base (relative), more than ${s.maxUpdateNorm}` }
  return undefined
}
