/**
 * Pipeline training and its transport (run: `npx tsx bench/pipeline.ts`), written to
 * bench/results/pipeline.json. In one process, on the NATS server at BENCH_NATS (default
 * nats://127.0.0.1:4222):
 * - the transport: MB/s of sending `BENCH_TENSOR_MB` (16) of float32 activations (a smooth signal
 *   with noise, as a layer's output looks) through the chunked, checked, acknowledged transport,
 *   without and with gzip, against the bus's own request/reply of the same bytes in chunks of the
 *   same size with nothing checked (the baseline, same run);
 * - training: tokens/s of `BENCH_STEPS` (5) steps of the built-in model through pipelines of p
 *   stages and m microbatches (tensors on NATS), against the same steps in one process (same run),
 *   and each pipeline's bubble as measured (1 − the stages' compute time / (p × the step's time))
 *   against 1F1B's (p−1)/(m+p−1). The stages share this machine's cores, so the measured bubble
 *   counts their contention as idle time too.
 */
import { Effect } from "effect"
import { pipelineStep } from "../actors/pipeline-step.ts"
import { serveStageWorkers } from "../actors/stage-worker.ts"
import { ModelRunnerOnnx } from "../adapters/executor/model-runner.ts"
import { defaultAdamW, initAdamW } from "../domain/model/adamw.ts"
import { sampleBatch } from "../domain/model/data.ts"
import { initWeights } from "../domain/model/init.ts"
import { makePrng } from "../domain/model/prng.ts"
import { defaultSpec } from "../domain/model/spec.ts"
import { evenStages } from "../domain/model/stage.ts"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeTensorSender, receiveTensors, type TransportSettings } from "../actors/pipeline-transport.ts"
import { makeNatsBus } from "../adapters/bus/nats.ts"
import { Bus } from "../domain/ports/bus.ts"
import { machineInfo, writeResults } from "./record.ts"

const NATS = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222"
const MB = Number(process.env.BENCH_TENSOR_MB ?? 16)
const ROUNDS = 3
const STEPS = Number(process.env.BENCH_STEPS ?? 5)
const BATCH = 8
const corpus = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "../docs/corpus/train.txt")))
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

/** Activations: a smooth signal plus small noise, as float32 bytes (a fixed seed). */
const activations = (bytes: number) => {
  const values = new Float32Array(bytes / 4)
  let s = 1
  for (let i = 0; i < values.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31
    values[i] = Math.sin(i / 64) + (s / 2 ** 31 - 0.5) * 0.01
  }
  return new Uint8Array(values.buffer)
}

const settings = (compression: "none" | "gzip"): TransportSettings => ({
  timeoutMs: 5000,
  maxRetries: 2,
  backoffBaseMs: 100,
  breaker: { threshold: 5, resetMs: 10_000 },
  chunkBytes: 1024 * 1024,
  compression,
  maxBufferBytes: 256 * 1024 * 1024
})

/** The best of ROUNDS runs of `send`, in MB/s of the tensor's own bytes. */
const rate = (send: Effect.Effect<void, unknown>) =>
  Effect.gen(function* () {
    let best = Infinity
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now()
      yield* send
      best = Math.min(best, performance.now() - t0)
    }
    return MB / (best / 1000)
  })

const main = Effect.gen(function* () {
  const bus = yield* Bus
  const tensor = activations(MB * 1024 * 1024)
  const subject = (what: string) => `blyan.bench.pipeline.${process.pid}.${what}`
  const chunk = Math.min(1024 * 1024, bus.maxPayload - 1024)
  yield* bus.serve(subject("raw"), () => Effect.succeed(new Uint8Array(1)))
  const raw = yield* rate(
    Effect.gen(function* () {
      for (let at = 0; at < tensor.length; at += chunk) yield* bus.request(subject("raw"), tensor.subarray(at, at + chunk), { timeoutMs: 5000 })
    })
  )
  const measured: Record<string, { mbPerS: number; ratioToBus: number; chunks: number }> = {}
  for (const compression of ["none", "gzip"] as const) {
    const at = subject(compression)
    const receiver = yield* receiveTensors(at, { maxBufferBytes: 256 * 1024 * 1024, staleMs: 60_000 })
    const sender = yield* makeTensorSender(settings(compression))
    const mbPerS = yield* rate(Effect.zipRight(sender.send(at, tensor), receiver.take))
    measured[compression] = { mbPerS: round(mbPerS), ratioToBus: round(mbPerS / raw), chunks: sender.stats().chunks / ROUNDS }
  }
  const training = yield* trainingFigures
  const result = {
    bench: "pipeline",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `${MB} MB of float32 activations over ${NATS}, sender and receiver in one process, chunks of ${chunk} bytes (1 MiB capped by the server's max payload); best of ${ROUNDS}; the baseline is the bus's request/reply of the same chunks with nothing hashed, compressed or reassembled`,
    busMbPerS: round(raw),
    transport: measured,
    training
  }
  console.log(JSON.stringify(result, null, 2))
  writeResults("pipeline", result)
})

/** Tokens/s of the same steps in one process and through pipelines, with each pipeline's bubble. */
const trainingFigures = Effect.gen(function* () {
  const runner = yield* ModelRunner
  const graphs = runner.graphs(defaultSpec)
  const weights = initWeights(defaultSpec)
  const batches = Array.from({ length: STEPS }, (_, i) => sampleBatch(corpus, BATCH, defaultSpec.context, makePrng(i)))
  const tokens = STEPS * BATCH * defaultSpec.context
  // A warm-up step: the graphs' sessions are created once.
  yield* runner.trainStep(weights, initAdamW(), batches[0]!, defaultAdamW)
  let t0 = performance.now()
  let state = initAdamW()
  let w = weights
  for (const b of batches) ({ weights: w, state } = yield* runner.trainStep(w, state, b, defaultAdamW))
  const single = tokens / ((performance.now() - t0) / 1000)
  const pipelines: Array<Record<string, number>> = []
  for (const [p, m] of [[2, 4], [2, 8], [4, 4], [4, 8]] as const) {
    let busy = 0
    let wall = 0
    let s = initAdamW()
    w = weights
    const nodes = Array.from({ length: p }, (_, k) => `bench${process.pid}-p${p}m${m}-s${k}`)
    yield* serveStageWorkers(nodes, settings("none"))
    t0 = performance.now()
    for (const [i, batch] of batches.entries()) {
      const r = yield* Effect.scoped(pipelineStep({ graphs, weights: w, state: s, batch, config: defaultAdamW, stages: evenStages(defaultSpec.layers, p), nodes, microbatches: m, epoch: `bench${process.pid}`, round: `p${p}m${m}s${i}`, transport: settings("none"), deadlineMs: 600_000 }))
      ;({ weights: w, state: s } = r)
      busy += r.busyMs.reduce((a, b) => a + b, 0)
      wall += r.wallMs
    }
    const tps = tokens / ((performance.now() - t0) / 1000)
    pipelines.push({ stages: p, microbatches: m, tokensPerS: round(tps, 0), ratioToOneProcess: round(tps / single), bubbleMeasured: round(1 - busy / (p * wall), 3), bubble1F1B: round((p - 1) / (m + p - 1), 3) })
  }
  return { model: defaultSpec.name, batch: BATCH, steps: STEPS, oneProcessTokensPerS: round(single, 0), pipelines }
}).pipe(Effect.provide(ModelRunnerOnnx({ device: "cpu" })))

await Effect.runPromise(Effect.scoped(Effect.flatMap(makeNatsBus([NATS]), (bus) => Effect.provideService(main, Bus, bus))))
