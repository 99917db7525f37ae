/** What proof and verify do. Loaded when one of them runs (see proof-commands.ts). */
import { Console, Effect, Either, Option } from "effect"
import { proveConsistency, proveInclusion, verifyLogProof } from "../../actors/log-proofs.ts"
import { verifyBlockProofs } from "../../actors/block-proofs.ts"
import { latestTrustedHead } from "../../actors/tree-heads.ts"
import { ledgerKeyName, openTreeHead } from "../../domain/ledger/tree-head.ts"
import { trustedLedgerKeys } from "../ledger.ts"
import { readText } from "./files.ts"
import { emit, ExitCode, fail } from "./output.ts"

const show = (proof: unknown) => Effect.sync(() => console.log(JSON.stringify(proof, null, 2)))

export const inclusion = ({ seq, size }: { readonly seq: number; readonly size: Option.Option<number> }) =>
  Effect.flatMap(proveInclusion(seq, Option.getOrUndefined(size)), show)

export const consistency = ({ from, to }: { readonly from: number; readonly to: Option.Option<number> }) =>
  Effect.flatMap(proveConsistency(from, Option.getOrUndefined(to)), show)

/** The latest tree head the ledger's key signed for this log, as its note. */
export const head = () =>
  Effect.gen(function* () {
    const keys = yield* trustedLedgerKeys
    const latest = yield* latestTrustedHead(keys)
    if (latest === undefined) return yield* fail("no tree head signed by this machine's ledger key is kept with this ledger: run `blyan init` or `blyan up`")
    yield* Effect.sync(() => process.stdout.write(latest.note))
    // Who signed, in full: what a verifier elsewhere passes as --key.
    yield* Console.error(`signed by the ledger key ${keys[0]!.publicKey}`)
  })

/** Every block a proved answer names is on the log whose key is `key`. */
const verifyAnswer = (json: boolean, file: string, key: string) =>
  Effect.gen(function* () {
    let answer: { readonly experts?: ReadonlyArray<{ readonly block?: unknown }>; readonly proofs?: unknown }
    try {
      answer = JSON.parse(yield* readText(file))
    } catch {
      return yield* fail(`${file} is not JSON: expected what \`blyan chat --prove --json\` prints`, ExitCode.refused)
    }
    const blocks = (Array.isArray(answer?.experts) ? answer.experts : []).map((e) => e?.block).filter((b): b is string => typeof b === "string")
    if (blocks.length === 0) return yield* fail(`${file} names no blocks: expected what \`blyan chat --prove --json\` prints`, ExitCode.refused)
    const verdict = verifyBlockProofs(answer.proofs, blocks, key)
    if (Either.isLeft(verdict)) return yield* fail(verdict.left, ExitCode.integrity)
    yield* emit(json, { ok: true, shows: verdict.right }, () => `OK: ${verdict.right}`)
  })

export const verify = ({
  json,
  proof,
  answer,
  root,
  head: headFile,
  key
}: {
  readonly json: boolean
  readonly proof: Option.Option<string>
  readonly answer: Option.Option<string>
  readonly root: Option.Option<string>
  readonly head: Option.Option<string>
  readonly key: Option.Option<string>
}) =>
  Effect.gen(function* () {
    if (Option.isSome(proof) === Option.isSome(answer)) return yield* fail("give one of --proof (a proof) and --answer (a proved answer)", ExitCode.usage)
    if (Option.isSome(answer)) {
      if (Option.isNone(key)) return yield* fail("--answer needs --key: the public key of the ledger whose signed head the proofs lead to", ExitCode.usage)
      return yield* verifyAnswer(json, answer.value, key.value)
    }
    if (Option.isSome(headFile) !== Option.isSome(key)) return yield* fail("--head and --key go together: a signed tree head and the public key of the ledger that signed it", ExitCode.usage)
    const text = yield* readText(Option.getOrThrow(proof))
    let expected: { readonly root: string; readonly size?: number } | undefined = Option.isSome(root) ? { root: root.value } : undefined
    if (Option.isSome(headFile) && Option.isSome(key)) {
      const opened = openTreeHead(yield* readText(headFile.value), [{ name: ledgerKeyName(key.value), publicKey: key.value }])
      if (Either.isLeft(opened)) return yield* fail(`${headFile.value}: ${opened.left}`, ExitCode.integrity)
      expected = { root: opened.right.root, size: opened.right.size }
    }
    const verdict = verifyLogProof(text, expected)
    if (Either.isLeft(verdict)) return yield* fail(verdict.left, ExitCode.integrity)
    yield* emit(json, { ok: true, shows: verdict.right }, () => `OK: ${verdict.right}`)
  })
