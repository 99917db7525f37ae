/**
 * The ModelRunner port on onnxruntime: the domain's forward, training and generation programs with their
 * graphs built once per model shape and run on the Executor. `ModelRunnerOnnx({ device })` is the
 * whole stack on onnxruntime (the device comes from configuration, e.g. BLYAN_DEVICE).
 */
import { Effect, Layer } from "effect"
import type { ExecutionProviderUnavailable } from "../../domain/ports/executor.ts"
import { Executor } from "../../domain/ports/executor.ts"
import { ModelRunner, type ModelRunnerApi } from "../../domain/ports/model-runner.ts"
import { forward } from "../../domain/model/forward.ts"
import { generate } from "../../domain/model/generate.ts"
import type { ModelGraphs, Precision } from "../../domain/model/onnx/graphs.ts"
import { makeGraphsCache } from "../../domain/model/onnx/graphs.ts"
import type { ModelSpec } from "../../domain/model/spec.ts"
import { evaluateLoss, lossAndGradients, trainStep } from "../../domain/model/train.ts"
import type { OnnxExecutorSettings } from "./onnxruntime.ts"
import { OnnxExecutorLive } from "./onnxruntime.ts"

export const makeModelRunner = (precision: Precision = "f32"): Effect.Effect<ModelRunnerApi, never, Executor> =>
  Effect.gen(function* () {
    const executor = yield* Executor
    const cached = makeGraphsCache()
    const graphs = (spec: ModelSpec): ModelGraphs => cached(spec, precision)
    const provide = <A, E>(eff: Effect.Effect<A, E, Executor>) => Effect.provideService(eff, Executor, executor)
    return {
      graphs,
      forward: (w, batch) => provide(forward(graphs(w.spec), w, batch)),
      generate: (w, prompt, options, compute) => provide(generate(graphs(w.spec), w, prompt, options, compute)),
      evaluateLoss: (w, batch) => provide(evaluateLoss(graphs(w.spec), w, batch)),
      lossAndGradients: (w, batch) => provide(lossAndGradients(graphs(w.spec), w, batch)),
      trainStep: (w, state, batch, config, options) => provide(trainStep(graphs(w.spec), w, state, batch, config, options))
    }
  })

export const ModelRunnerLive: Layer.Layer<ModelRunner, never, Executor> = Layer.effect(ModelRunner, makeModelRunner())

/** The model on onnxruntime, CPU or CUDA; sessions are released when the layer's scope closes. */
export const ModelRunnerOnnx = (settings: OnnxExecutorSettings): Layer.Layer<ModelRunner | Executor, ExecutionProviderUnavailable> =>
  Layer.provideMerge(ModelRunnerLive, OnnxExecutorLive(settings))
