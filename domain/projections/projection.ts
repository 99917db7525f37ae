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

type StateOf<P> = P extends Projection<infer S, unknown> ? S : never

/** Projections folded side by side as one (what a decision reads from several read models). */
export const sideBySide = <P extends Record<string, Projection<any, unknown>>>(name: string, parts: P): Projection<{ [K in keyof P]: StateOf<P[K]> }, unknown> => {
  const entries = Object.entries(parts)
  return {
    name,
    initial: () => Object.fromEntries(entries.map(([k, p]) => [k, p.initial()])) as { [K in keyof P]: StateOf<P[K]> },
    evolve: (s, e) => {
      const states = s as Record<string, unknown>
      for (const [k, p] of entries) states[k] = p.evolve(states[k], e)
      return s
    },
    view: (s) => Object.fromEntries(entries.map(([k, p]) => [k, p.view((s as Record<string, unknown>)[k])]))
  }
}
