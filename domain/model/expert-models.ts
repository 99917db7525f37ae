/**
 * One model's experts as the network speaks of them, whatever the model's family: the block name
 * of each expert, the width of its rows, and its forward pass built from its block's part. A node
 * hosting experts, the owner checking what a node claims to hold, and the router asking nodes all
 * go through this, so the built-in model and imported checkpoints are served alike.
 */
import { Effect, Either } from "effect"
import type { Executor } from "../ports/executor.ts"
import type { ChosenModel } from "../projections/model.ts"
import { expertForward, type FloatArray, type ModelError } from "./forward.ts"
import { localFamilyExperts, type FamilyTensor } from "./families/forward.ts"
import { importedPart } from "./families/imported-spec.ts"
import { partTensors } from "./families/layout.ts"
import { buildFamilyGraphs, type FamilyGraphs } from "./onnx/families.ts"
import { buildModelGraphs, type ModelGraphs } from "./onnx/graphs.ts"
import { expertPart } from "./spec.ts"
import { validatePart, type Part } from "./tensor.ts"

/** One expert's forward over `rows` rows of x ([rows, width]). */
export type ExpertForward = (x: FloatArray, rows: number) => Effect.Effect<FloatArray, ModelError, Executor>

export type ExpertModel = {
  /** The model's name (`BUILTIN_MODEL` for the built-in one). */
  readonly name: string
  /** Whether it is an imported model: its experts' claims name it. */
  readonly imported: boolean
  readonly layers: number
  readonly experts: number
  /** Floats per row in and out of an expert. */
  readonly width: number
  /** The block name of an expert: what the ledger's current blocks are keyed by. */
  readonly blockName: (layer: number, expert: number) => string
  /** The forward of `part` as that expert, or why `part` is not that expert's weights. */
  readonly runner: (layer: number, expert: number, part: Part) => Either.Either<ExpertForward, string>
}

/** `build()`, called once, when first wanted. */
const once = <A>(build: () => A) => {
  let built: { readonly value: A } | undefined
  return () => (built ??= { value: build() }).value
}

const builtin = (m: ChosenModel & { readonly kind: "builtin" }, graphs: () => ModelGraphs): ExpertModel => ({
  name: m.name,
  imported: false,
  layers: m.spec.layers,
  experts: m.spec.experts,
  width: m.spec.dModel,
  blockName: expertPart,
  runner: (layer, expert, part) => {
    const name = expertPart(layer, expert)
    if (part.name !== name) return Either.left(`it holds ${part.name}, not ${name}`)
    return Either.mapBoth(validatePart(m.spec, part), {
      onLeft: (e) => e.message,
      onRight: (p) => {
        const weights = { spec: m.spec, parts: new Map([[name, p]]) }
        return (x, rows) => expertForward(graphs(), weights, name, x, rows)
      }
    })
  }
})

const imported = (m: ChosenModel & { readonly kind: "imported" }, graphs: () => FamilyGraphs): ExpertModel => ({
  name: m.name,
  imported: true,
  layers: m.spec.layers,
  experts: m.spec.experts,
  width: m.spec.hidden,
  blockName: (layer, expert) => importedPart(m.name, expertPart(layer, expert)),
  runner: (layer, expert, part) => {
    const name = expertPart(layer, expert)
    if (part.name !== name) return Either.left(`it holds ${part.name}, not ${name}`)
    const weights = new Map<string, FamilyTensor>()
    for (const t of partTensors(m.spec, { kind: "expert", layer, expert }) ?? []) {
      const tensor = part.tensors[t.name]
      if (tensor === undefined || tensor.shape.join() !== t.shape.join()) return Either.left(`its ${t.name} is ${tensor === undefined ? "missing" : `[${tensor.shape}]`}, not [${t.shape}]`)
      weights.set(t.checkpointName, tensor)
    }
    // One compute per expert held: its feeds are converted once and reused by every request.
    const compute = localFamilyExperts(m.spec, graphs(), weights)
    return Either.right((x, rows) => Effect.map(compute(layer, [{ expert, x, rows }]), (out) => out[0]!.y))
  }
})

/** `ExpertModel`s of the ledger's models, their graphs built once per published spec, when an expert is first run. */
export const makeExpertModels = () => {
  const built = new Map<string, ExpertModel>()
  return (m: ChosenModel): ExpertModel => {
    const hit = built.get(m.hash)
    if (hit !== undefined) return hit
    const model = m.kind === "builtin" ? builtin(m, once(() => buildModelGraphs(m.spec))) : imported(m, once(() => buildFamilyGraphs(m.spec)))
    built.set(m.hash, model)
    return model
  }
}
