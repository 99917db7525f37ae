/**
 * The Executor port on onnxruntime-node. Sessions are cached by the sha256 of the graph bytes
 * (building a session costs far more than running a tiny graph) and released when the Layer's
 * scope closes. `device: "cuda"` uses the CUDA execution provider and fails at construction with
 * `ExecutionProviderUnavailable` where it cannot be loaded, rather than silently using the CPU.
 */
import { createHash } from "node:crypto"
import { Effect, Layer, type Scope } from "effect"
import * as ort from "onnxruntime-node"
import type { Device, ExecutorApi, OnnxModel, TensorType, TensorValue } from "../../domain/ports/executor.ts"
import { ExecutionFailed, ExecutionProviderUnavailable, Executor } from "../../domain/ports/executor.ts"
import { GraphBuilder } from "../../domain/model/onnx/ir.ts"
import { serializeGraph } from "../../domain/model/onnx/serialize.ts"

export interface OnnxExecutorSettings {
  readonly device: Device
  /** Threads per session for intra-op parallelism; onnxruntime's default (all cores) when absent. */
  readonly intraOpThreads?: number
  /**
   * onnxruntime's graph optimisation level, "all" by default. Use "basic" for f64 graphs: the
   * extended fusions (e.g. FusedMatMul) have f32 kernels only.
   */
  readonly optimization?: "basic" | "extended" | "all"
}

const TENSOR_TYPES: ReadonlySet<string> = new Set<TensorType>(["float32", "float64", "int64"])

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const sessionOptions = (s: OnnxExecutorSettings): ort.InferenceSession.SessionOptions => ({
  executionProviders: s.device === "cuda" ? ["cuda", "cpu"] : ["cpu"],
  graphOptimizationLevel: s.optimization ?? "all",
  // Warnings (e.g. lenient shape merges) are noise here; errors still surface as exceptions.
  logSeverityLevel: 3,
  ...(s.intraOpThreads === undefined ? {} : { intraOpNumThreads: s.intraOpThreads, interOpNumThreads: 1 })
})

/** A one-node graph, used to check that the execution provider loads. */
const probeModel = (): Uint8Array => {
  const b = new GraphBuilder("probe", "float")
  return serializeGraph(b.build([b.identity(b.input("x", [1]), "y")]))
}

export const makeOnnxExecutor = (settings: OnnxExecutorSettings): Effect.Effect<ExecutorApi, ExecutionProviderUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const options = sessionOptions(settings)
    const sessions = new Map<string, Promise<ort.InferenceSession>>()
    const digests = new WeakMap<Uint8Array, string>()
    let loads = 0

    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const all = [...sessions.values()]
        sessions.clear()
        await Promise.all(all.map((p) => p.then((s) => s.release()).catch(() => undefined)))
      })
    )

    if (settings.device === "cuda") {
      yield* Effect.tryPromise({
        try: async () => (await ort.InferenceSession.create(probeModel(), options)).release(),
        catch: (e) => ExecutionProviderUnavailable.of({ device: "cuda", reason: errorText(e) })
      })
    }

    const keyOf = (bytes: Uint8Array): string => {
      let k = digests.get(bytes)
      if (k === undefined) {
        k = createHash("sha256").update(bytes).digest("hex")
        digests.set(bytes, k)
      }
      return k
    }

    const session = (model: OnnxModel): Promise<ort.InferenceSession> => {
      const key = keyOf(model.bytes)
      let s = sessions.get(key)
      if (s === undefined) {
        loads++
        s = ort.InferenceSession.create(model.bytes, options)
        // A failed load is not cached: the next call tries again and reports its own error.
        s.catch(() => sessions.get(key) === s && sessions.delete(key))
        sessions.set(key, s)
      }
      return s
    }

    const run: ExecutorApi["run"] = (model, feeds, fetches) =>
      Effect.tryPromise({
        try: async () => {
          const s = await session(model)
          const inputs: Record<string, ort.Tensor> = {}
          for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.type, t.data, [...t.dims])
          const result = await s.run(inputs, [...fetches])
          const out: Record<string, TensorValue> = {}
          for (const name of fetches) {
            const t = result[name]
            if (t === undefined) throw new Error(`no output ${name}`)
            if (!TENSOR_TYPES.has(t.type)) throw new Error(`output ${name} has unsupported type ${t.type}`)
            out[name] = { type: t.type as TensorType, dims: [...t.dims], data: t.data as TensorValue["data"] }
          }
          return out
        },
        catch: (e) => ExecutionFailed.of({ graph: model.name, reason: errorText(e) })
      })

    return { device: settings.device, run, stats: Effect.sync(() => ({ sessions: sessions.size, loads })) }
  })

/** The Executor on onnxruntime; sessions live as long as the Layer's scope. */
export const OnnxExecutorLive = (settings: OnnxExecutorSettings): Layer.Layer<Executor, ExecutionProviderUnavailable> =>
  Layer.scoped(Executor, makeOnnxExecutor(settings))
