import type { DecodedEvent } from "../ledger/envelope.ts"
import type { StateCodec } from "./state-codec.ts"

/**
 * A read model as a fold over the log. `evolve` may update the state it is given in place: a
 * fold owns its state from `initial()` on, and nothing else holds it, which keeps replay of
 * long logs linear. `view` is the canonical, comparable picture of the state. A projection folded
 * over the whole log has a `snapshot` codec, so that a fold can resume from a saved state.
 */
export interface Projection<S, V> {
  readonly name: string
  readonly initial: () => S
  readonly evolve: (state: S, event: DecodedEvent) => S
  readonly view: (state: S) => V
  readonly snapshot?: StateCodec<S>
}

export const fold = <S, V>(p: Projection<S, V>, events: Iterable<DecodedEvent>): S => {
  let s = p.initial()
  for (const e of events) s = p.evolve(s, e)
  return s
}
