import { GENESIS_COVENANT } from "../../domain/ledger/genesis.ts"
import { newEvent, type NewEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"

export const genesisEvent = (): NewEvent => newEvent("GenesisCovenantSealed", GENESIS_COVENANT)

/** A small valid event whose payload varies with `n`, for filling streams in tests. */
export const keyIssued = (n: number): NewEvent =>
  newEvent("ApiKeyIssued", { keyHash: sha256Hex(`key-${n}`), role: n % 2 === 0 ? "node" : "contributor" })
