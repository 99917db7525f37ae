/** What submit and improve do. Loaded when one of them runs (see pol-commands.ts). */
import * as path from "node:path"
import { Console, Effect, Option } from "effect"
import { loadModel } from "../../actors/model-ledger.ts"
import { trainPart } from "../../actors/pol-evaluation.ts"
import { runLocalRound, type RoundReport } from "../../actors/round-coordinator.ts"
import { splitTexts } from "../../actors/trainer.ts"
import { decodePart } from "../../domain/model/safetensors.ts"
import type { Part } from "../../domain/model/tensor.ts"
import { defaultPoLSettings } from "../../domain/pol/evaluation.ts"
import { formatBly } from "../../domain/rewards/inference.ts"
import { homeConfig, setting } from "../config.ts"
import { localKey } from "../identity.ts"
import { existingLedgerKey, LedgerAccess } from "../ledger.ts"
import { modelRunnerLayer } from "../model-layer.ts"
import { registerOwnKey } from "./contributor-handlers.ts"
import { readFileBytes, readUtf8 } from "./files.ts"
import { emit, ExitCode, fail } from "./output.ts"

const lines = (r: RoundReport) =>
  [
    `${r.accepted ? "accepted" : "rejected"}: ${r.reason}`,
    `round   ${r.round} (${r.target}, base ${r.base.slice(0, 16)}…, candidate ${r.block.slice(0, 16)}…)`,
    ...r.verdicts.map((v) => `  ${v.validator.slice(0, 16)}… ${v.passes ? "pass" : "fail"}: loss ${v.baselineLoss.toFixed(4)} -> ${v.candidateLoss.toFixed(4)} (${(v.improvement * 100).toFixed(2)}%), better on ${v.wins} of ${v.batches} batches`),
    ...(r.reward === undefined ? [] : [`block   ${r.block} is now current; reward ${formatBly(BigInt(r.reward))} BLY`])
  ].join("\n")

/** Run `candidate` through a round here with `count` local validators; a rejection exits 1 with the report. */
const decide = (json: boolean, candidate: Part, heldOut: Uint8Array, count: number) =>
  Effect.gen(function* () {
    if (count < 1 || count > 16) return yield* fail(`--validators must be within 1..16, got ${count}`, ExitCode.usage)
    const { key: ledgerKey, file } = yield* existingLedgerKey
    if (ledgerKey === undefined) return yield* fail(`a round here is opened by the ledger's key (${file}), which this machine does not hold`)
    const home = yield* setting(homeConfig)
    const me = yield* localKey(home, "contributor")
    if (yield* registerOwnKey(me.publicKey, ledgerKey)) yield* Console.error(`registered this machine's contributor key ${me.publicKey} with the ledger key`)
    // The validators' keys live beside a file ledger (in BLYAN_HOME for a network store).
    const location = (yield* LedgerAccess).location
    const dir = path.join(path.isAbsolute(location) ? location : home, "validators")
    const validators = yield* Effect.forEach(Array.from({ length: count }, (_, i) => i + 1), (i) => localKey(dir, `validator-${i}`))
    const report = yield* runLocalRound({ candidate, contributorSeed: me.seed, validators, ledgerKey, heldOut, settings: defaultPoLSettings })
    if (!report.accepted) return yield* fail(`rejected: ${report.reason}`, ExitCode.refused, report)
    yield* emit(json, report, () => lines(report))
  })

export const submit = (args: { readonly json: boolean; readonly expert: string; readonly weights: string; readonly heldOut: string; readonly validators: number }) =>
  Effect.gen(function* () {
    const part = yield* decodePart(yield* readFileBytes(args.weights))
    if (part.name !== args.expert) return yield* fail(`${args.weights} holds part ${part.name}, not ${args.expert}`)
    yield* decide(args.json, part, yield* readUtf8(args.heldOut), args.validators)
  }).pipe(Effect.provide(modelRunnerLayer))

export const improve = (args: {
  readonly json: boolean
  readonly expert: string
  readonly steps: number
  readonly corpus: string
  readonly heldOut: Option.Option<string>
  readonly lr: number
  readonly seed: number
  readonly validators: number
}) =>
  Effect.gen(function* () {
    if (args.steps < 1) return yield* fail(`--steps must be at least 1, got ${args.steps}`, ExitCode.usage)
    if (!(args.lr > 0 && args.lr < 1)) return yield* fail(`--lr must be within (0, 1), got ${args.lr}`, ExitCode.usage)
    const { weights } = yield* loadModel
    if (!weights.parts.has(args.expert)) return yield* fail(`the model has no part ${args.expert}`)
    const given = Option.isSome(args.heldOut) ? yield* readUtf8(args.heldOut.value) : undefined
    const { corpus, heldOut } = yield* splitTexts({ corpus: yield* readUtf8(args.corpus), heldOut: given }, weights.spec.context)
    const candidate = yield* trainPart(weights, args.expert, corpus, { steps: args.steps, batch: 8, lr: args.lr, seed: args.seed })
    yield* decide(args.json, candidate, heldOut, args.validators)
  }).pipe(Effect.provide(modelRunnerLayer))
