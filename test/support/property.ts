import { Effect, Runtime, type Scope } from "effect"

/**
 * fast-check's async properties take Promises: this runs one property case (its own scope, so its
 * own store) on the calling test's runtime.
 */
export const scopedPropertyRunner = Effect.map(
  Effect.runtime<never>(),
  (runtime) =>
    <A, E>(eff: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
      Runtime.runPromise(runtime)(Effect.scoped(eff))
)
