/** What proof and verify do. Loaded when one of them runs (see proof-commands.ts). */
import { Effect, Either, Option } from "effect"
import { proveConsistency, proveInclusion, verifyLogProof } from "../../actors/log-proofs.ts"
import { decodeUtf8, readFileBytes } from "./files.ts"
import { emit, ExitCode, fail } from "./output.ts"

const show = (proof: unknown) => Effect.sync(() => console.log(JSON.stringify(proof, null, 2)))

export const inclusion = ({ seq, size }: { readonly seq: number; readonly size: Option.Option<number> }) =>
  Effect.flatMap(proveInclusion(seq, Option.getOrUndefined(size)), show)

export const consistency = ({ from, to }: { readonly from: number; readonly to: Option.Option<number> }) =>
  Effect.flatMap(proveConsistency(from, Option.getOrUndefined(to)), show)

export const verify = ({ json, proof, root }: { readonly json: boolean; readonly proof: string; readonly root: Option.Option<string> }) =>
  Effect.gen(function* () {
    const text = new TextDecoder().decode(yield* decodeUtf8(proof, yield* readFileBytes(proof)))
    const verdict = verifyLogProof(text, Option.getOrUndefined(root))
    if (Either.isLeft(verdict)) return yield* fail(verdict.left, ExitCode.integrity)
    yield* emit(json, { ok: true, shows: verdict.right }, () => `OK: ${verdict.right}`)
  })
