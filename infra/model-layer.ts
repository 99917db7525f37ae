import { Effect, Layer } from "effect"
import { ModelRunnerOnnx } from "../adapters/executor/model-runner.ts"
import { deviceConfig, setting } from "./config.ts"

/** The model on onnxruntime, on the device BLYAN_DEVICE names (cpu by default). */
export const modelRunnerLayer = Layer.unwrapEffect(Effect.map(setting(deviceConfig), (device) => ModelRunnerOnnx({ device })))
