/**
 * The pipeline's transport (run: `npx tsx bench/pipeline.ts`), written to bench/results/pipeline.json.
 * On the NATS server at BENCH_NATS (default nats://127.0.0.1:4222), in one process: MB/s of
 * sending `BENCH_TENSOR_MB` (16) of float32 activations (a smooth signal with noise, as a layer's
 * output looks; gzip helps it less than text) through the chunked, checked, acknowledged
 * transport, without and with gzip, against the bus's own request/reply of the same bytes in
 * chunks of the same size with nothing checked (the baseline, same run).
 */
import { Effect } from "effect"
import { makeTensorSender, receiveTensors, type TransportSettings } from "../actors/pipeline-transport.ts"
import { makeNatsBus } from "../adapters/bus/nats.ts"
import { Bus } from "../domain/ports/bus.ts"
import { machineInfo, writeResults } from "./record.ts"

const NATS = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222"
const MB = Number(process.env.BENCH_TENSOR_MB ?? 16)
const ROUNDS = 3
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
  const result = {
    bench: "pipeline",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `${MB} MB of float32 activations over ${NATS}, sender and receiver in one process, chunks of ${chunk} bytes (1 MiB capped by the server's max payload); best of ${ROUNDS}; the baseline is the bus's request/reply of the same chunks with nothing hashed, compressed or reassembled`,
    busMbPerS: round(raw),
    transport: measured
  }
  console.log(JSON.stringify(result, null, 2))
  writeResults("pipeline", result)
})

await Effect.runPromise(Effect.scoped(Effect.flatMap(makeNatsBus([NATS]), (bus) => Effect.provideService(main, Bus, bus))))
