/**
 * Deterministic genesis weights: every part is drawn from its own PRNG stream, derived from
 * `spec.seed` and the part name, so one block can be regenerated (and checked) on its own.
 */
import { roundToDtype } from "./half.ts"
import { hashString, makePrng } from "./prng.ts"
import type { ModelSpec } from "./spec.ts"
import { partNames } from "./spec.ts"
import type { ModelWeights, Part, Tensor } from "./tensor.ts"
import { numel, partLayout } from "./tensor.ts"

/** Standard deviation of the embeddings (as in GPT-2). */
const EMBED_STD = 0.02

export const initPart = (spec: ModelSpec, name: string): Part => {
  const layout = partLayout(spec, name)
  if (layout === undefined) throw new RangeError(`${name} is not a part of ${spec.name}`)
  const rng = makePrng(spec.seed, hashString(name))
  // Residual-branch outputs are scaled down so the residual stream's variance stays bounded with depth.
  const residualScale = 1 / Math.sqrt(2 * spec.layers)
  const tensors: Record<string, Tensor> = {}
  for (const [tname, shape] of layout) {
    const data = new Float32Array(numel(shape))
    const uniform = (bound: number) => {
      for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-bound, bound)
    }
    if (tname === "ln.weight") data.fill(1)
    else if (tname === "ln.bias" || tname === "b1" || tname === "b2") data.fill(0)
    else if (tname === "tok" || tname === "pos") uniform(EMBED_STD * Math.sqrt(3))
    else {
      // A linear map [in, out]: uniform with variance 1/(3 in), as PyTorch's default.
      const bound = 1 / Math.sqrt(shape[0]!)
      uniform(tname === "wo" || tname === "w2" ? bound * residualScale : bound)
    }
    tensors[tname] = { dtype: spec.dtype, shape, data: roundToDtype(data, spec.dtype) }
  }
  return { name, tensors }
}

/** All genesis weights of a spec; the same spec gives byte-identical weights. */
export const initWeights = (spec: ModelSpec): ModelWeights => {
  const parts = new Map<string, Part>()
  for (const n of partNames(spec)) parts.set(n, initPart(spec, n))
  return { spec, parts }
}
