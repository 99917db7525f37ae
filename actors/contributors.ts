/** Registering and revoking the contributors whose blocks the ledger accepts (see `domain/projections/contributors.ts`). */
import { Effect } from "effect"
import { Streams } from "../domain/ledger/streams.ts"
import type { KeyPair } from "../domain/ledger/signing.ts"
import {
  ContributorsProjection,
  decideRegisterContributor,
  decideRevokeContributor,
  signRegistration,
  requireWriter,
  signRevocation
} from "../domain/projections/contributors.ts"
import { foldStream, handleCommand } from "./command.ts"
import { ModelProjection } from "../domain/projections/model.ts"
import { sideBySide } from "../domain/projections/projection.ts"

/** The registry as the log holds it now. */
export const contributors = Effect.map(foldStream(Streams.keys, ContributorsProjection), ({ state }) => state)

/** Register `publicKey` as a contributor, signed by the ledger key; undefined when nothing was appended. */
export const registerContributor = (publicKey: string, ledgerKey: KeyPair, label?: string) =>
  handleCommand({ stream: Streams.keys, projection: ContributorsProjection, decide: (s) => decideRegisterContributor(s, signRegistration(publicKey, ledgerKey.seed, label)) })

export const revokeContributor = (publicKey: string, ledgerKey: KeyPair, reason: string) =>
  handleCommand({ stream: Streams.keys, projection: ContributorsProjection, decide: (s) => decideRevokeContributor(s, signRevocation(publicKey, ledgerKey.seed, reason)) })

/** Fails unless `publicKey` may sign new blocks now: checked before work whose blocks the ledger would refuse. */
/** What new blocks are recorded on: the model, and who may sign blocks (training, imports). */
export const BlockWritersView = sideBySide("training", { model: ModelProjection, contributors: ContributorsProjection })

export const requireKnownWriter = (publicKey: string) => Effect.flatMap(contributors, (s) => requireWriter(s, publicKey))
