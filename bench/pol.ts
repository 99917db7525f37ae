/**
 * Proof-of-Learning benchmarks (run: `npx tsx bench/pol.ts`), on the default spec
 * (blyan-moe-tiny) and the shipped corpus, written to bench/results/pol.json:
 *
 * (a) the cost of one validator's evaluation (its paired batches: base and candidate) against one
 *     training step of the candidate (the baseline, measured in the same run), and against the
 *     whole training run `blyan improve` makes (goal: evaluation ≤ 2× a training step);
 * (b) the latency of a round run in process from submission to decision, with 3 validators;
 * (c) the same over the bus (in memory): the contributor's submission to the coordinator, which
 *     fetches the candidate from it, and 3 validators on their own replicas, which fetch the model
 *     and the candidate and answer with their verdicts.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, ManagedRuntime, Schedule } from "effect"
import { ModelRunnerOnnx } from "../adapters/executor/model-runner.ts"
import { makeMemoryEventStore } from "../adapters/eventstore/memory.ts"
import { makeFileBlobStore } from "../adapters/blobs/file.ts"
import { registerContributor } from "../actors/contributors.ts"
import { initLedger } from "../actors/genesis.ts"
import { EVALUATION_ROWS, evaluateCandidate, trainPart } from "../actors/pol-evaluation.ts"
import { runLocalRound } from "../actors/round-coordinator.ts"
import { serveBlobs } from "../actors/blob-exchange.ts"
import { foldStream, handleCommand } from "../actors/command.ts"
import { serveLog } from "../actors/log-server.ts"
import { signParts } from "../actors/model-ledger.ts"
import { makeRoundDesk, serveRounds, submitContribution } from "../actors/round-service.ts"
import { runValidator } from "../actors/validator.ts"
import { makeMemoryBlobStore } from "../adapters/blobs/memory.ts"
import { makeMemoryBus } from "../adapters/bus/memory.ts"
import { Bus } from "../domain/ports/bus.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { encodePart } from "../domain/model/safetensors.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { KeysProjection, decideIssueKey } from "../domain/projections/keys.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import { defaultAdamW, initAdamW } from "../domain/model/adamw.ts"
import { sampleBatch } from "../domain/model/data.ts"
import { initWeights } from "../domain/model/init.ts"
import { makePrng } from "../domain/model/prng.ts"
import { defaultSpec } from "../domain/model/spec.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../domain/ledger/signing.ts"
import { defaultPoLSettings } from "../domain/pol/evaluation.ts"
import { machineInfo, writeResults } from "./record.ts"

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const STEPS = Number(process.env.BENCH_IMPROVE_STEPS ?? 20)
const TARGET = "layer1.expert0"
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
const corpus = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "../docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "../docs/corpus/heldout.txt")))
const rt = ManagedRuntime.make(ModelRunnerOnnx({ device: "cpu" }))
const time = async (f: () => Promise<unknown>) => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

try {
  const runner = await rt.runPromise(ModelRunner)
  const weights = initWeights(defaultSpec)
  const candidate = await rt.runPromise(trainPart(weights, TARGET, corpus, { steps: STEPS, batch: 8, lr: 1e-2, seed: 1 }))
  const rng = makePrng(5)
  const step = () => rt.runPromise(runner.trainStep(weights, initAdamW(), sampleBatch(corpus, 8, defaultSpec.context, rng), defaultAdamW))
  const evaluation = () => rt.runPromise(evaluateCandidate(weights, candidate, heldOut, 7, defaultPoLSettings))
  await step()
  await evaluation()
  const steps: number[] = []
  const evaluations: number[] = []
  for (let r = 0; r < REPEATS; r++) {
    steps.push(await time(step))
    evaluations.push(await time(evaluation))
  }
  const improveRun = await time(() => rt.runPromise(trainPart(weights, TARGET, corpus, { steps: STEPS, batch: 8, lr: 1e-2, seed: 1 })))

  // (b) a whole round in process: three validators on a fresh ledger.
  const validators = [1, 2, 3].map((i) => keyPairFromSeed(sha256Hex(`bench validator ${i}`)))
  const ledgerKey = keyPairFromSeed(sha256Hex("bench ledger"))
  const contributor = keyPairFromSeed(sha256Hex("bench contributor"))
  const latencies: number[] = []
  let accepted = 0
  for (let r = 0; r < REPEATS; r++) {
    await rt.runPromise(
      Effect.gen(function* () {
        const events = yield* makeMemoryEventStore()
        const blobs = yield* makeFileBlobStore(fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", "blyan-bench-pol-")))
        const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
        yield* on(initLedger(defaultSpec))
        yield* on(registerContributor(contributor.publicKey, ledgerKey))
        const t0 = performance.now()
        const report = yield* on(runLocalRound({ candidate, contributorSeed: contributor.seed, validators, ledgerKey, heldOut, settings: defaultPoLSettings }))
        latencies.push(performance.now() - t0)
        accepted += report.accepted ? 1 : 0
      }).pipe(Effect.scoped)
    )
  }
  // (c) a round over the bus: the coordinator, three validators of their own replicas, a contributor.
  const networkLatencies: number[] = []
  let networkAccepted = 0
  for (let r = 0; r < REPEATS; r++) {
    await rt.runPromise(
      Effect.gen(function* () {
        const bus = yield* makeMemoryBus()
        const events = yield* makeMemoryEventStore()
        const blobs = yield* makeFileBlobStore(fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", "blyan-bench-pol-")))
        const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs), Effect.provideService(Bus, bus))
        yield* on(initLedger(defaultSpec))
        yield* on(registerContributor(contributor.publicKey, ledgerKey))
        yield* on(handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, sha256Hex("bench validators"), "validator") }))
        yield* on(Effect.all([serveLog, serveBlobs, Effect.flatMap(makeRoundDesk({ ledgerKey, settings: defaultPoLSettings, deadlineMs: 120_000, timeoutMs: 10_000, staleMs: 600_000 }), (desk) => serveRounds(desk, 10_000))]))
        for (const key of validators) {
          const settings = { key, apiKey: "bench validators", heldOut, timeoutMs: 10_000, heartbeatMs: 60_000, onStatus: () => undefined }
          yield* Effect.forkScoped(runValidator(settings, yield* makeMemoryEventStore()).pipe(Effect.provideService(Bus, bus), Effect.provideService(BlobStore, yield* makeMemoryBlobStore())))
        }
        // Joined once each validator answers on its subject.
        for (const key of validators)
          yield* Effect.retry(bus.request(Subjects.validatorEvaluate(key.publicKey), new TextEncoder().encode("{}"), { timeoutMs: 1000 }), Schedule.spaced("20 millis"))
        const { state } = yield* on(foldStream("*", ModelProjection))
        const [block] = yield* signParts([candidate], () => [state.current.get(TARGET)!.block], contributor.seed).pipe(Effect.provideService(BlobStore, yield* makeMemoryBlobStore()))
        const t0 = performance.now()
        const report = yield* submitContribution(block!, encodePart(candidate), 600_000).pipe(Effect.provideService(Bus, bus))
        networkLatencies.push(performance.now() - t0)
        networkAccepted += report.accepted ? 1 : 0
      }).pipe(Effect.scoped)
    )
  }
  const result = {
    bench: "pol",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `medians of ${REPEATS}; default spec, onnxruntime on the CPU; a training step of 8 rows of ${defaultSpec.context} bytes; an evaluation of ${defaultPoLSettings.batches} paired batches (base and candidate) of ${EVALUATION_ROWS} rows`,
    trainingStepMs: round(median(steps)),
    evaluationMs: round(median(evaluations)),
    ratioEvaluationToTrainingStep: round(median(evaluations) / median(steps)),
    improveRunMs: round(improveRun),
    improveSteps: STEPS,
    ratioEvaluationToImproveRun: round(median(evaluations) / improveRun),
    roundLatencyMs: round(median(latencies)),
    validators: validators.length,
    roundsAccepted: `${accepted} of ${REPEATS}`,
    networkRoundLatencyMs: round(median(networkLatencies)),
    ratioNetworkToLocalRound: round(median(networkLatencies) / median(latencies)),
    networkRoundsAccepted: `${networkAccepted} of ${REPEATS}`
  }
  console.log(JSON.stringify(result, null, 2))
  writeResults("pol", result)
} finally {
  await rt.dispose()
}
