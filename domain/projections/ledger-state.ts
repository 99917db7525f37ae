import type { DecodedEvent } from "../ledger/envelope.ts"
import { BalancesProjection } from "./balances.ts"
import { ChainProjection } from "./chain.ts"
import { ContributorsProjection } from "./contributors.ts"
import { RoundsProjection } from "../pol/rounds.ts"
import { KeysProjection } from "./keys.ts"
import { ModelProjection } from "./model.ts"
import { NodesProjection } from "./nodes.ts"
import { PlansProjection } from "./plans.ts"
import type { Projection } from "./projection.ts"

/** Every read model the ledger keeps; audit rebuilds all of them from seq 0. */
const projections = {
  balances: BalancesProjection,
  chain: ChainProjection,
  contributors: ContributorsProjection,
  keys: KeysProjection,
  model: ModelProjection,
  nodes: NodesProjection,
  plans: PlansProjection,
  rounds: RoundsProjection
} as const

type Projections = typeof projections
export type LedgerState = { -readonly [K in keyof Projections]: ReturnType<Projections[K]["initial"]> }
export type LedgerView = { [K in keyof Projections]: unknown }

const names = Object.keys(projections) as Array<keyof Projections>
const at = <K extends keyof Projections>(k: K) => projections[k] as unknown as Projection<LedgerState[K], unknown>

export const initialLedgerState = (): LedgerState =>
  Object.fromEntries(names.map((k) => [k, projections[k].initial()])) as LedgerState

export const evolveLedgerState = (s: LedgerState, e: DecodedEvent): LedgerState => {
  for (const k of names) (s as Record<string, unknown>)[k] = at(k).evolve(s[k], e)
  return s
}

/** The read model the ledger keeps under `name`, and its part of a ledger state; undefined when it keeps none. */
export const ledgerProjection = (name: string) =>
  Object.prototype.hasOwnProperty.call(projections, name)
    ? { projection: at(name as keyof Projections) as Projection<unknown, unknown>, stateOf: (s: LedgerState): unknown => s[name as keyof Projections] }
    : undefined

export const viewLedgerState = (s: LedgerState): LedgerView => Object.fromEntries(names.map((k) => [k, at(k).view(s[k])])) as LedgerView
