import { Either, Option } from "effect"
import { expect } from "vitest"
import type { NewEvent } from "../../domain/ledger/events.ts"
import { decodeEvent, prepareEvent, sealBatch, type Envelope } from "../../domain/ledger/envelope.ts"
import { genesisEnvelope } from "../../domain/ledger/genesis.ts"
import type { Projection } from "../../domain/projections/projection.ts"

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

/** `log` with `[stream, event]` pairs sealed after it, each checked by the catalog as a store would. */
export const extendLog = (log: ReadonlyArray<Envelope>, more: ReadonlyArray<readonly [string, NewEvent]>, at = "2026-01-01T00:00:00.000Z"): Envelope[] => {
  const out = [...log]
  for (const [stream, event] of more) {
    const head = out[out.length - 1]!
    const prepared = Either.getOrThrow(prepareEvent(stream, event))
    out.push(...Either.getOrThrow(sealBatch({ seq: head.seq, hash: head.hash }, stream, [prepared], at)))
  }
  return out
}

/** Seal `[stream, event]` pairs after the genesis covenant into a valid log. */
export const sealLog = (past: ReadonlyArray<readonly [string, NewEvent]>): Envelope[] => extendLog([genesisEnvelope()], past)

/** The state a projection folds from a log, decoded as any replay would. */
export const foldLog = <S>(projection: Projection<S, unknown>, log: ReadonlyArray<Envelope>): S =>
  log.reduce((s, env) => projection.evolve(s, Either.getOrThrow(decodeEvent(env))), projection.initial())

/**
 * given([stream, event] pairs after genesis).when(decide).then(events) for deciders whose state is a
 * projection of the log (they may read the hashes and seqs the envelopes give).
 */
export const LogDeciderSpec = <S>(projection: Projection<S, unknown>) => ({
  given: (past: ReadonlyArray<readonly [string, NewEvent]>) => ({
    when: <E>(decide: (s: S) => Either.Either<ReadonlyArray<NewEvent>, E>) => {
      const result = () => decide(foldLog(projection, sealLog(past)))
      return {
        then: (expected: ReadonlyArray<NewEvent>) => expect(Either.getOrThrow(result())).toEqual(expected),
        thenNothingHappened: () => expect(Either.getOrThrow(result())).toEqual([]),
        thenFails: (tag: string, match: Record<string, unknown> = {}) => {
          const r = result()
          expect(Either.isLeft(r)).toBe(true)
          expect(Either.getLeft(r).pipe(Option.getOrUndefined)).toMatchObject({ _tag: tag, ...match })
        }
      }
    }
  })
})
