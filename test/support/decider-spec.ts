import { Either } from "effect"
import { expect } from "vitest"
import type { NewEvent } from "../../domain/ledger/events.ts"

/**
 * given(past events).when(command).then(new events) — a spec reads like the rule it checks.
 * `evolve` folds the past; `decide` is the command under test.
 */
export const DeciderSpec = <S>(initial: () => S, evolve: (s: S, e: NewEvent) => S) => ({
  given: (past: ReadonlyArray<NewEvent>) => ({
    when: <E>(decide: (s: S) => Either.Either<ReadonlyArray<NewEvent>, E>) => {
      const result = () => decide(past.reduce(evolve, initial()))
      return {
        then: (expected: ReadonlyArray<NewEvent>) => expect(Either.getOrThrow(result())).toEqual(expected),
        thenFails: (tag: string, message?: RegExp) => {
          const r = result()
          expect(Either.isLeft(r)).toBe(true)
          const err = Either.getLeft(r).pipe((o) => (o._tag === "Some" ? (o.value as { _tag: string; message: string }) : undefined))
          expect(err?._tag).toBe(tag)
          if (message) expect(err?.message).toMatch(message)
        }
      }
    }
  })
})
