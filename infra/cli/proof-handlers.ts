/** What proof and verify do. Loaded when one of them runs (see proof-commands.ts). */
import { Console, Effect, Either, Option } from "effect"
import { proveConsistency, proveInclusion, verifyLogProof } from "../../actors/log-proofs.ts"
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

export const verify = ({
  json,
  proof,
  root,
  head: headFile,
  key
}: {
  readonly json: boolean
  readonly proof: string
  readonly root: Option.Option<string>
  readonly head: Option.Option<string>
  readonly key: Option.Option<string>
}) =>
  Effect.gen(function* () {
    if (Option.isSome(headFile) !== Option.isSome(key)) return yield* fail("--head and --key go together: a signed tree head and the public key of the ledger that signed it", ExitCode.usage)
    const text = yield* readText(proof)
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
