import { Effect, Either } from "effect"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { KeysProjection, decideIssueKey, decideRevokeKey } from "../../domain/projections/keys.ts"
import { handleCommand } from "../../actors/command.ts"
import { ensureGenesis } from "../../actors/genesis.ts"
import { genesisEvent, keyIssued } from "../support/events.ts"
import { interleaving, racedBy } from "../support/stores.ts"

const key = (n: number) => sha256Hex(`key-${n}`)
const issue = (n: number) => handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, key(n), "node") })
const revoke = (n: number) => handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideRevokeKey(s, key(n)) })

const withGenesis = Effect.gen(function* () {
  const store = yield* makeMemoryEventStore()
  yield* store.append(Streams.chainA, [genesisEvent()], "no_stream")
  return store
})

describe("the command handler", () => {
  it.effect("retries a lost race by deciding again on fresh state: the same key issued meanwhile is refused", () =>
    Effect.gen(function* () {
      const base = yield* withGenesis
      let decisions = 0
      // Another writer issues the very key between our decision and our append.
      const store = racedBy(base, (s) => s.append(Streams.keys, [keyIssued(1)], "any"))
      const r = yield* handleCommand({
        stream: Streams.keys,
        projection: KeysProjection,
        decide: (s) => (decisions++, decideIssueKey(s, key(1), "admin"))
      }).pipe(Effect.provideService(EventStore, store), Effect.either)
      expect(decisions).toBe(2)
      expect(Either.isLeft(r) && r.left._tag).toBe("KeyRefused")
      const keys = yield* base.read(Streams.keys)
      expect(keys.map((e) => (e.data as { role: string }).role)).toEqual(["contributor"])
    })
  )

  it.effect("a lost race over another key succeeds on the retry, after both", () =>
    Effect.gen(function* () {
      const base = yield* withGenesis
      const store = racedBy(base, (s) => s.append(Streams.keys, [keyIssued(2)], "any"))
      const r = yield* issue(1).pipe(Effect.provideService(EventStore, store))
      expect(r?.revision).toBe(1)
      expect((yield* base.read(Streams.keys)).map((e) => (e.data as { keyHash: string }).keyHash)).toEqual([key(2), key(1)])
    })
  )

  it.effect("a decision of no events appends nothing", () =>
    Effect.gen(function* () {
      const store = yield* withGenesis
      const r = yield* ensureGenesis.pipe(Effect.provideService(EventStore, store))
      expect(r.created).toBe(false)
      expect((yield* store.head)?.seq).toBe(0)
    })
  )

  it("keeps the key registry's rules under any concurrent mix of issues and revokes (property)", async () => {
    const op = fc.record({ revoke: fc.boolean(), key: fc.nat({ max: 3 }) })
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
        const outcome = await Effect.runPromise(
          Effect.gen(function* () {
            const base = yield* withGenesis
            const results = yield* Effect.all(
              ops.map((o) => Effect.either(o.revoke ? revoke(o.key) : issue(o.key))),
              { concurrency: "unbounded" }
            ).pipe(Effect.provideService(EventStore, interleaving(base)))
            return { results, log: yield* base.read(Streams.keys) }
          })
        )
        const issued = new Map<string, number>()
        const revoked = new Map<string, number>()
        for (const e of outcome.log) {
          const d = e.data as { keyHash: string }
          const into = e.type === "ApiKeyIssued" ? issued : revoked
          into.set(d.keyHash, (into.get(d.keyHash) ?? 0) + 1)
          if (e.type === "ApiKeyRevoked") expect(issued.has(d.keyHash)).toBe(true)
        }
        for (const n of [...issued.values(), ...revoked.values()]) expect(n).toBe(1)
        // Every command either recorded its event or was refused by the rules (never by the race).
        const recorded = outcome.results.filter(Either.isRight).length
        expect(recorded).toBe(outcome.log.length)
        for (const r of outcome.results) if (Either.isLeft(r)) expect(r.left._tag).toBe("KeyRefused")
        expect(issued.size).toBe(new Set(ops.filter((o) => !o.revoke).map((o) => o.key)).size)
      }),
      { numRuns: 60 }
    )
  })
})
