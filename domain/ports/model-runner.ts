/**
 * The model as a service: forward, generation, loss and training steps on a set of weights.
 * The onnxruntime stack implements it (adapters/executor/model-runner.ts); actors ask for this tag.
 */
import { Context, type Effect } from "effect"
import type { AdamWConfig, AdamWState } from "../model/adamw.ts"
import type { ExpertCompute, ForwardResult, ModelError, TokenBatch } from "../model/forward.ts"
import type { GenerateOptions, GenerateResult } from "../model/generate.ts"
import type { ModelGraphs } from "../model/onnx/graphs.ts"
import type { ModelSpec } from "../model/spec.ts"
import type { ModelWeights } from "../model/tensor.ts"
import type { LossAndGradients, TrainBatch, TrainOptions, TrainStepResult } from "../model/train.ts"

export interface ModelRunnerApi {
  /** The compiled graphs for a spec (memoised by the sizes the graphs depend on). */
  readonly graphs: (spec: ModelSpec) => ModelGraphs
  readonly forward: (weights: ModelWeights, batch: TokenBatch) => Effect.Effect<ForwardResult, ModelError>
  /** With `compute`, the experts are computed by it (e.g. by nodes over the bus) instead of here. */
  readonly generate: <E = never>(weights: ModelWeights, prompt: Uint8Array, options: GenerateOptions, compute?: ExpertCompute<E>) => Effect.Effect<GenerateResult, ModelError | E>
  readonly evaluateLoss: (weights: ModelWeights, batch: TrainBatch) => Effect.Effect<number, ModelError>
  readonly lossAndGradients: (weights: ModelWeights, batch: TrainBatch) => Effect.Effect<LossAndGradients, ModelError>
  readonly trainStep: (
    weights: ModelWeights,
    state: AdamWState,
    batch: TrainBatch,
    config: AdamWConfig,
    options?: TrainOptions
  ) => Effect.Effect<TrainStepResult, ModelError>
}

export class ModelRunner extends Context.Tag("blyan/ModelRunner")<ModelRunner, ModelRunnerApi>() {}
