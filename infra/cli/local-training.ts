/**
 * Training the ledger's model on this machine, as `train` does and as `up` does on a fresh ledger:
 * the blocks are signed with this machine's contributor key, which this machine's ledger key (when
 * it holds one) registers once there is something to record; progress on stderr.
 */
import { Effect } from "effect"
import { trainOnLedger, type TakeStep, type TrainingRun, type TrainReport, type TrainSettings } from "../../actors/trainer.ts"
import { thisMachineSigner } from "./contributor-handlers.ts"
import { progressBar } from "./output.ts"

/** Train on `texts` with this machine's contributor key, showing progress under `label`; the report and that key. */
export const trainHere = <E = never, R = never>(
  texts: { readonly corpus: Uint8Array; readonly heldOut?: Uint8Array },
  settings: TrainSettings,
  label = "train",
  takeStep?: TakeStep<E, R>,
  run?: TrainingRun
) =>
  Effect.gen(function* () {
    const { key, register } = yield* thisMachineSigner
    const bar = progressBar(settings.steps, label)
    const report = yield* trainOnLedger(texts, settings, { seed: key.seed, register }, (step, loss) => bar.step(step, `loss ${loss.toFixed(4)}`), takeStep, run)
    bar.done()
    return { report, contributor: key.publicKey }
  })

/** What a training run's steps did to its losses, in a line. */
export const lossesLine = (report: TrainReport) =>
  `trained ${report.steps} steps: train loss ${report.trainLossBefore.toFixed(4)} -> ${report.trainLossAfter.toFixed(4)}, held-out ${report.heldOutLossBefore.toFixed(4)} -> ${report.heldOutLossAfter.toFixed(4)}`

/** What a training run did, in two lines. */
export const trainingSummary = ({ report, contributor }: { readonly report: TrainReport; readonly contributor: string }) =>
  [
    lossesLine(report),
    report.appended.length > 0 ? `appended ${report.appended.length} improved blocks (contributor ${contributor.slice(0, 16)}…)` : "held-out loss did not improve: nothing appended"
  ].join("\n")
