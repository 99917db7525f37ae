import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { auditLedger } from "../../actors/auditor.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { ensureGenesis, initLedger } from "../../actors/genesis.ts"
import { signParts } from "../../actors/model-ledger.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { GENESIS_CONTRIBUTOR_SEED } from "../../domain/model/blocks.ts"
import { initWeights } from "../../domain/model/init.ts"
import { partNames } from "../../domain/model/spec.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { decidePublishGenesis, decidePublishSpec } from "../../domain/projections/model-deciders.ts"
import { tinySpec } from "../domain/model/support.ts"
import { freshLedger } from "../support/stores.ts"

describe("genesis weights are re-derived by audit", () => {
  it.scoped("a ledger made by init audits green; one whose genesis blocks hold other weights, signed and chained as init would, fails at the first such block", () =>
    Effect.gen(function* () {
      const honest = yield* freshLedger()
      const onHonest = <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore>) => eff.pipe(Effect.provideService(EventStore, honest.events), Effect.provideService(BlobStore, honest.blobs))
      yield* onHonest(initLedger(tinySpec))
      expect((yield* onHonest(auditLedger())).replay.firstBad).toBeUndefined()

      // The attacker's ledger: the same covenant and spec, then weights of their choosing as "genesis".
      const forged = yield* freshLedger()
      const on = <A, E>(eff: Effect.Effect<A, E, EventStore | BlobStore>) => eff.pipe(Effect.provideService(EventStore, forged.events), Effect.provideService(BlobStore, forged.blobs))
      yield* on(ensureGenesis)
      yield* on(handleCommand({ stream: Streams.chainA, projection: ModelProjection, decide: (s) => decidePublishSpec(s, tinySpec) }))
      const { state } = yield* on(foldStream("*", ModelProjection))
      const chosen = initWeights({ ...tinySpec, seed: tinySpec.seed + 1 })
      const blocks = yield* on(signParts(partNames(tinySpec).map((n) => chosen.parts.get(n)!), () => [state.spec!.hash], GENESIS_CONTRIBUTOR_SEED))
      yield* on(handleCommand({ stream: Streams.chainB, projection: ModelProjection, reads: "log", decide: (s) => decidePublishGenesis(s, blocks) }))
      const report = yield* on(auditLedger())
      expect(report.replay.firstBad?.reason).toMatch(/^block embedding depends on the model spec but its payload [0-9a-f]{64} is not the spec's seeded genesis weights \([0-9a-f]{64}\)$/)
    })
  )
})
