import fc from "fast-check"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { newEvent, type NewEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { tinyQwen3Moe } from "./family-weights.ts"
import { sealLog } from "./decider-spec.ts"
import { arbitraryLog } from "./ledger.ts"

/** A log's events after genesis, as the `[stream, event]` pairs a writer appended. */
export const eventsOf = (log: ReadonlyArray<Envelope>): Array<readonly [string, NewEvent]> =>
  log.slice(1).map((env) => [env.stream, { type: env.type, version: env.version, data: env.data } as NewEvent] as const)

/**
 * `arbitraryLog`, with the model spec published somewhere, imported models' specs here and there,
 * and training runs that name blocks already on chain B: every event a whole-log projection folds.
 */
export const arbitraryRichLog = (maxOps = 30): fc.Arbitrary<ReadonlyArray<Envelope>> =>
  fc
    .record({
      log: arbitraryLog(maxOps),
      spec: fc.option(fc.nat()),
      imported: fc.array(fc.nat(), { maxLength: 2 }),
      trained: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 })), { maxLength: 3 })
    })
    .map(({ log, spec, imported, trained }) => {
      const pairs = eventsOf(log)
      for (const [at, n] of trained) {
        const i = at % (pairs.length + 1)
        const blocks = pairs.slice(0, i).flatMap(([, e]) => (e.type === "BlockAppended" ? [(e.data as { hash: string }).hash] : [])).slice(-n)
        if (blocks.length === 0) continue
        const outcome = { steps: n + 1, corpus: sha256Hex(`corpus-${at}`), heldOut: null, trainLossBefore: 2, trainLossAfter: 1.5, heldOutLossBefore: 2.25, heldOutLossAfter: 1.75 + n / 8 }
        pairs.splice(i, 0, [Streams.chainB, newEvent("ModelTrained", { ...outcome, blocks })])
      }
      if (spec !== null) pairs.splice(spec % (pairs.length + 1), 0, [Streams.chainA, newEvent("ModelSpecPublished", { spec: defaultSpec })])
      imported.forEach((at, k) => {
        const model = { ...tinyQwen3Moe, name: `m${k}`, files: { "config.json": sha256Hex(`config of m${k}`) } }
        pairs.splice(at % (pairs.length + 1), 0, [Streams.chainA, newEvent("ModelSpecPublished", { spec: model })])
      })
      return sealLog(pairs)
    })
