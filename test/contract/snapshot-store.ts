import { Effect, Either, Option, type Scope } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "@effect/vitest"
import type { Snapshot, SnapshotStoreApi } from "../../domain/ports/snapshot-store.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { scopedPropertyRunner } from "../support/property.ts"

export type SnapshotStoreFactory = () => Effect.Effect<SnapshotStoreApi, unknown, Scope.Scope>

const json: fc.Arbitrary<unknown> = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown)

const snapshotArb = (projection: string): fc.Arbitrary<Snapshot> =>
  fc.record({
    projection: fc.constant(projection),
    version: fc.integer({ min: 1, max: 9 }),
    seq: fc.nat({ max: 1_000_000 }),
    hash: fc.nat().map((n) => sha256Hex(`envelope-${n}`)),
    streams: fc.dictionary(fc.constantFrom("chain-A", "chain-B", "keys", "node-n1", "expert-0.1"), fc.integer({ min: 1, max: 1000 })),
    state: json
  })

const names = ["chain", "model", "nodes", "plans"]

/** The snapshot store port's contract: every adapter runs exactly these tests. */
export const snapshotStoreContract = (name: string, factory: SnapshotStoreFactory) =>
  describe(`SnapshotStore contract: ${name}`, () => {
    it.effect("load gives back what save stored, the last save of a projection wins, list holds one per projection (property)", () =>
      Effect.gen(function* () {
        const run = yield* scopedPropertyRunner
        const saves = fc.array(fc.constantFrom(...names).chain(snapshotArb), { minLength: 1, maxLength: 8 })
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(saves, (snapshots) =>
              run(
                Effect.gen(function* () {
                  const store = yield* factory()
                  for (const s of snapshots) yield* store.save(s)
                  const last = new Map(snapshots.map((s) => [s.projection, s]))
                  for (const n of names) expect(Option.getOrUndefined(yield* store.load(n))).toEqual(last.get(n))
                  const listing = yield* store.list
                  expect(listing.unreadable).toEqual([])
                  expect([...listing.snapshots].sort((a, b) => (a.projection < b.projection ? -1 : 1))).toEqual(
                    [...last.values()].sort((a, b) => (a.projection < b.projection ? -1 : 1))
                  )
                })
              )
            ),
            { numRuns: 30 }
          )
        )
      })
    )

    it.scoped("a loaded state is the loader's own: changing it changes nothing stored", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        yield* store.save({ projection: "nodes", version: 1, seq: 3, hash: sha256Hex("x"), streams: { keys: 2 }, state: [["n1", { blocks: ["a"] }]] })
        const first = Option.getOrThrow(yield* store.load("nodes"))
        ;((first.state as Array<[string, { blocks: string[] }]>)[0]![1].blocks).push("b")
        ;(first.streams as Record<string, number>)["keys"] = 9
        const again = Option.getOrThrow(yield* store.load("nodes"))
        expect(again.state).toEqual([["n1", { blocks: ["a"] }]])
        expect(again.streams).toEqual({ keys: 2 })
      })
    )

    it.scoped("remove forgets a projection's snapshot and leaves the others; removing what is not there is fine", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        const s = (projection: string): Snapshot => ({ projection, version: 1, seq: 1, hash: sha256Hex(projection), streams: {}, state: null })
        yield* store.save(s("model"))
        yield* store.save(s("chain"))
        yield* store.remove("model")
        yield* store.remove("plans")
        expect(Option.isNone(yield* store.load("model"))).toBe(true)
        expect((yield* store.list).snapshots.map((x) => x.projection)).toEqual(["chain"])
      })
    )

    it.scoped("refuses to save under a name that is not a snapshot name, or a snapshot that is not one; nothing is stored", () =>
      Effect.gen(function* () {
        const store = yield* factory()
        const base: Snapshot = { projection: "model", version: 1, seq: 1, hash: sha256Hex("m"), streams: {}, state: {} }
        for (const bad of [
          { ...base, projection: "../escape" },
          { ...base, projection: "" },
          { ...base, hash: "not a hash" },
          { ...base, seq: -1 },
          { ...base, state: { n: Number.NaN } }
        ]) {
          const r = yield* Effect.either(store.save(bad))
          expect(Either.isLeft(r) && r.left._tag).toBe("SnapshotStoreFailure")
        }
        expect(yield* store.list).toEqual({ snapshots: [], unreadable: [] })
        expect(Option.isNone(yield* store.load("../escape"))).toBe(true)
      })
    )
  })
