/**
 * Validators and contributions on the bus. A validator joins (`Subjects.validatorJoin`, repeated
 * as its heartbeat) with an API key of role validator, signing its ed25519 key and the hash of the
 * held-out text it draws from; the round coordinator opens each round with the validators heard
 * from lately. A contribution reaches the coordinator as its signed block
 * (`Subjects.roundSubmit`), its weights served by the contributor meanwhile. A round asks each of
 * its validators for a verdict (`Subjects.validatorEvaluate`), naming the seq of the event that
 * closed the round to contributions, from which the validator derives the batches' seed itself.
 */
import { Either, ParseResult, Schema } from "effect"
import { BlockAppendedData } from "../ledger/events.ts"
import { sha256Hex } from "../ledger/hash.ts"
import { canonicalize } from "../ledger/jcs.ts"
import { signHex, verifyHex } from "../ledger/signing.ts"
import type { KeysState } from "../projections/keys.ts"

const Hex = (bytes: number) => Schema.String.pipe(Schema.pattern(new RegExp(`^[0-9a-f]{${bytes * 2}}$`)))

export const ValidatorJoin = Schema.Struct({
  publicKey: Hex(32),
  /** sha256 of the held-out text the validator draws its batches from. */
  heldOut: Hex(32),
  apiKey: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)),
  signature: Hex(64)
})
export type ValidatorJoin = typeof ValidatorJoin.Type

export class ValidatorRefused extends Schema.TaggedError<ValidatorRefused>()("ValidatorRefused", { message: Schema.String }) {
  static because = (reason: string) => new ValidatorRefused({ message: `validator refused: ${reason}` })
}

const joinHex = (publicKey: string, heldOut: string) => Buffer.from(canonicalize({ act: "join as validator", publicKey, heldOut }), "utf8").toString("hex")

export const signJoin = (key: { readonly publicKey: string; readonly seed: string }, heldOut: string, apiKey: string): ValidatorJoin => ({
  publicKey: key.publicKey,
  heldOut,
  apiKey,
  signature: signHex(key.seed, joinHex(key.publicKey, heldOut))
})

const decodeJoin = Schema.decodeUnknownEither(Schema.parseJson(ValidatorJoin), { onExcessProperty: "error" })

/** A join from its text, or why it is not one. */
export const parseJoin = (text: string): Either.Either<ValidatorJoin, ValidatorRefused> =>
  Either.mapLeft(decodeJoin(text), (e) => ValidatorRefused.because(`malformed request: ${ParseResult.TreeFormatter.formatErrorSync(e)}`))

/** Why a join is refused, if it is: the API key must be issued, of role validator and not revoked, and the signature the validator key's. */
export const joinProblem = (keys: KeysState, j: ValidatorJoin): string | undefined => {
  const key = keys.get(sha256Hex(j.apiKey))
  if (key === undefined) return "unknown API key"
  if (key.revoked) return "the API key is revoked"
  if (key.role !== "validator") return `the API key is for a ${key.role}, not a validator`
  if (!verifyHex(j.publicKey, joinHex(j.publicKey, j.heldOut), j.signature)) return "the signature is not the validator key's"
  return undefined
}

const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))

/** What a round asks of a validator: its verdict on a contribution, the round closed at `seq`. */
export const EvaluationRequest = Schema.Struct({ round: Id, contribution: Id, seq: Schema.Int.pipe(Schema.nonNegative()) })
export type EvaluationRequest = typeof EvaluationRequest.Type

/** A contribution: its block, signed by its contributor and depending on the base it improves. */
export const Submission = Schema.Struct({ block: BlockAppendedData })
