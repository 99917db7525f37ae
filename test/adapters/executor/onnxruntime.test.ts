import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Effect, Either, Exit, Scope } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeOnnxExecutor, OnnxExecutorLive } from "../../../adapters/executor/onnxruntime.ts"
import { Executor } from "../../../domain/ports/executor.ts"
import type { OnnxModel } from "../../../domain/ports/executor.ts"
import { GraphBuilder } from "../../../domain/model/onnx/ir.ts"
import { serializeGraph } from "../../../domain/model/onnx/serialize.ts"

/** y = x · k, and the shape of x (an int64 output). */
const scaleModel = (k: number, float: "float" | "double" = "float"): OnnxModel => {
  const b = new GraphBuilder(`scale${k}`, float)
  const x = b.input("x", ["N"])
  return { name: `scale${k}`, bytes: serializeGraph(b.build([b.identity(b.mul(x, b.scalar(k)), "y"), b.identity(b.shape(x), "shape")])) }
}
const feed = (xs: number[]) => ({ x: { type: "float32" as const, dims: [xs.length], data: Float32Array.from(xs) } })

/** A fresh executor for `f`, closed (with its sessions) when `f` ends. */
const withExecutor = <A, E>(f: (ex: Executor["Type"]) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(makeOnnxExecutor({ device: "cpu", intraOpThreads: 1 }), f))

describe("onnxruntime executor", () => {
  it.effect("runs a graph and returns typed outputs", () =>
    Effect.gen(function* () {
      const out = yield* withExecutor((ex) => ex.run(scaleModel(3), feed([1, 2, 4]), ["y", "shape"]))
      expect(out.y!.type).toBe("float32")
      expect(Array.from(out.y!.data as Float32Array)).toEqual([3, 6, 12])
      expect(out.shape!.type).toBe("int64")
      expect(Array.from(out.shape!.data as BigInt64Array)).toEqual([3n])
      const d = yield* withExecutor((ex) => ex.run(scaleModel(2, "double"), { x: { type: "float64", dims: [1], data: Float64Array.of(0.1) } }, ["y"]))
      expect(d.y!.type).toBe("float64")
      expect((d.y!.data as Float64Array)[0]).toBe(0.2)
    })
  )

  it.effect("caches one session per distinct graph content (sha256), whichever buffer holds it", () =>
    Effect.gen(function* () {
      const counts = yield* withExecutor((ex) =>
        Effect.gen(function* () {
          const m = scaleModel(3)
          yield* ex.run(m, feed([1]), ["y"])
          yield* ex.run(m, feed([2]), ["y"])
          yield* ex.run({ name: "copy", bytes: Uint8Array.from(m.bytes) }, feed([3]), ["y"])
          const one = yield* ex.stats
          yield* ex.run(scaleModel(5), feed([1]), ["y"])
          return [one, yield* ex.stats]
        })
      )
      expect(counts).toEqual([
        { sessions: 1, loads: 1 },
        { sessions: 2, loads: 2 }
      ])
    })
  )

  it.effect("concurrent first runs of one graph share a single session", () =>
    Effect.gen(function* () {
      const n = yield* withExecutor((ex) =>
        Effect.gen(function* () {
          const m = scaleModel(7)
          yield* Effect.forEach([1, 2, 3, 4], (i) => ex.run(m, feed([i]), ["y"]), { concurrency: "unbounded" })
          return yield* ex.stats
        })
      )
      expect(n).toEqual({ sessions: 1, loads: 1 })
    })
  )

  it.effect("releases every session when the scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const ex = yield* Scope.extend(makeOnnxExecutor({ device: "cpu" }), scope)
      yield* ex.run(scaleModel(3), feed([1]), ["y"])
      yield* ex.run(scaleModel(4), feed([1]), ["y"])
      expect((yield* ex.stats).sessions).toBe(2)
      yield* Scope.close(scope, Exit.void)
      expect((yield* ex.stats).sessions).toBe(0)
    })
  )

  it.effect("invalid model bytes, bad feeds and unknown outputs are ExecutionFailed naming the graph; a failed load is not cached", () =>
    Effect.gen(function* () {
      const r = yield* withExecutor((ex) =>
        Effect.gen(function* () {
          const garbage = yield* Effect.either(ex.run({ name: "garbage", bytes: new Uint8Array([1, 2, 3, 4]) }, feed([1]), ["y"]))
          const cachedAfterGarbage = (yield* ex.stats).sessions
          const badType = yield* Effect.either(ex.run(scaleModel(3), { x: { type: "int64", dims: [1], data: BigInt64Array.of(1n) } }, ["y"]))
          const noOutput = yield* Effect.either(ex.run(scaleModel(3), feed([1]), ["nope"]))
          return { garbage, cachedAfterGarbage, badType, noOutput }
        })
      )
      for (const e of [r.garbage, r.badType, r.noOutput]) {
        expect(Either.isLeft(e)).toBe(true)
        if (Either.isLeft(e)) expect(e.left._tag).toBe("ExecutionFailed")
      }
      expect(Either.isLeft(r.garbage) && r.garbage.left.message).toMatch(/^running garbage failed: /)
      expect(r.cachedAfterGarbage).toBe(0)
    })
  )

  it.effect("device cuda: runs on the CUDA provider where it is installed, else fails with ExecutionProviderUnavailable", () =>
    Effect.gen(function* () {
      const binDir = path.dirname(createRequire(import.meta.url).resolve("onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node"))
      const cudaInstalled = fs.existsSync(path.join(binDir, "libonnxruntime_providers_cuda.so"))
      const r = yield* Effect.either(
        Effect.scoped(Effect.flatMap(Executor, (ex) => ex.run(scaleModel(2), feed([21]), ["y"]))).pipe(Effect.provide(OnnxExecutorLive({ device: "cuda" })))
      )
      if (cudaInstalled) {
        expect(Either.isRight(r) && Array.from(r.right.y!.data as Float32Array)).toEqual([42])
      } else {
        expect(Either.isLeft(r)).toBe(true)
        if (Either.isLeft(r)) {
          expect(r.left._tag).toBe("ExecutionProviderUnavailable")
          expect(r.left.message).toMatch(/^execution provider cuda is unavailable: /)
        }
      }
    })
  )
})
