/**
 * `blyan import --hf DIR` and `blyan export --hf DIR --model NAME`: an open MoE checkpoint in the
 * Hugging Face layout into the ledger, its blocks signed with this machine's contributor key
 * (registered by this machine's ledger key when it holds one), and back out byte for byte.
 */
import * as path from "node:path"
import { Effect, Option } from "effect"
import { importCheckpoint, modelParts } from "../../actors/checkpoint-import.ts"
import { openHfCheckpoint } from "../../adapters/checkpoint/hf-directory.ts"
import { exportHfCheckpoint } from "../../adapters/checkpoint/hf-export.ts"
import { thisMachineSigner } from "./contributor-handlers.ts"
import { emit, progressBar } from "./output.ts"

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`

/** A model's default name: the checkpoint directory's, kept to the characters a name may hold. */
const nameOf = (dir: string) => path.basename(path.resolve(dir)).replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "model"

export const importModel = ({ json, hf, name }: { readonly json: boolean; readonly hf: string; readonly name: Option.Option<string> }) =>
  Effect.gen(function* () {
    const { key, register } = yield* thisMachineSigner
    const model = Option.getOrElse(name, () => nameOf(hf))
    const report = yield* Effect.scoped(
      Effect.gen(function* () {
        const source = yield* openHfCheckpoint(hf)
        const bar = progressBar(source.totalBytes, "import", mib)
        let read = 0
        const r = yield* importCheckpoint(source, model, { seed: key.seed, ...(register === undefined ? {} : { register }) }, (bytes) => bar.step((read += bytes)))
        bar.done()
        return r
      })
    )
    const { spec } = report
    yield* emit(json, { ...report, contributor: key.publicKey }, () =>
      [
        `imported ${spec.family} model ${report.name}: ${spec.layers} layers × ${spec.experts} experts (top ${spec.topK}), vocab ${spec.vocab}, ${spec.dtype}, ${mib(report.bytes)}`,
        `spec ${report.specHash}`,
        report.appended === report.blocks ? `appended ${report.blocks} blocks (contributor ${key.publicKey.slice(0, 16)}…)` : `${report.appended} of ${report.blocks} blocks appended now; the rest were already on the ledger`
      ].join("\n")
    )
  })

export const exportHf = ({ json, hf, model }: { readonly json: boolean; readonly hf: string; readonly model: string }) =>
  Effect.gen(function* () {
    const files = yield* exportHfCheckpoint(hf, yield* modelParts(model))
    yield* emit(json, { model, dir: hf, files }, () => `wrote ${model} to ${hf}: ${files.join(", ")}`)
  })
