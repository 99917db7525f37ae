/** What the contributors commands do. Loaded when one of them runs (see contributor-commands.ts). */
import { Console, Effect, Option } from "effect"
import { contributors, registerContributor, revokeContributor } from "../../actors/contributors.ts"
import { ContributorsProjection, contributorProblem } from "../../domain/projections/contributors.ts"
import { existingLedgerKey } from "../ledger.ts"
import { homeConfig, setting } from "../config.ts"
import { localKey } from "../identity.ts"
import type { KeyPair } from "../../domain/ledger/signing.ts"
import { emit, fail } from "./output.ts"

/** This machine's ledger key, which registrations need; never created here (`init` and `up` create it). */
const registrarKey = Effect.flatMap(existingLedgerKey, ({ file, key }) =>
  key !== undefined ? Effect.succeed(key) : fail(`this machine holds no ledger key (${file}): contributors are registered where the ledger's tree heads are signed`)
)

export const add = ({ json, key: given, label }: { readonly json: boolean; readonly key: Option.Option<string>; readonly label: Option.Option<string> }) =>
  Effect.gen(function* () {
    const registrar = yield* registrarKey
    const key = Option.isSome(given) ? given.value : (yield* localKey(yield* setting(homeConfig), "contributor")).publicKey
    const r = yield* registerContributor(key, registrar, Option.getOrUndefined(label))
    yield* emit(json, { publicKey: key, registrar: registrar.publicKey, seq: r?.head.seq }, () => `registered contributor ${key} (signed by ledger key ${registrar.publicKey})`)
  })

export const revoke = ({ json, key, reason }: { readonly json: boolean; readonly key: string; readonly reason: string }) =>
  Effect.gen(function* () {
    const registrar = yield* registrarKey
    const r = yield* revokeContributor(key, registrar, reason)
    yield* emit(json, { publicKey: key, revoked: true, seq: r?.head.seq }, () => `revoked contributor ${key}: no new blocks are accepted from it`)
  })

export const list = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const state = yield* contributors
    const shown = (ContributorsProjection.view(state) as ReadonlyArray<{ publicKey: string; label?: string; registrar: string; registeredSeq: number; revokedSeq?: number }>).map((c) => ({
      ...c,
      active: contributorProblem(state, c.publicKey, false) === undefined
    }))
    yield* emit(json, shown, () =>
      shown.length === 0
        ? "no contributors registered"
        : shown
            .map((c) => `${c.publicKey}  ${c.revokedSeq === undefined ? "active " : `revoked at seq ${c.revokedSeq}`}  registered at seq ${c.registeredSeq} by ${c.registrar.slice(0, 16)}…${c.label ? `  ${c.label}` : ""}`)
            .join("\n")
    )
  })

/** Register `publicKey` with `registrar` unless the ledger knows it already; true when it registered. */
export const registerOwnKey = (publicKey: string, registrar: KeyPair) =>
  Effect.gen(function* () {
    if ((yield* contributors).has(publicKey)) return false
    return (yield* registerContributor(publicKey, registrar, "this machine's contributor key")) !== undefined
  })

/**
 * This machine's contributor key, and how it gets registered before blocks signed with it are
 * recorded: by this machine's ledger key when it holds one (else the ledger must know the key).
 */
export const thisMachineSigner = Effect.gen(function* () {
  const key = yield* localKey(yield* setting(homeConfig), "contributor")
  const { key: registrar } = yield* existingLedgerKey
  const register =
    registrar === undefined
      ? undefined
      : Effect.flatMap(registerOwnKey(key.publicKey, registrar), (registered) =>
          registered ? Console.error(`registered this machine's contributor key ${key.publicKey} with the ledger key`) : Effect.void
        )
  return { key, register }
})
