import { Effect, Either } from "effect"
import { ChainProjection, decideGenesis } from "../domain/projections/chain.ts"
import { Streams } from "../domain/ledger/streams.ts"
import type { ModelSpec } from "../domain/model/spec.ts"
import { publishGenesisModel } from "./model-ledger.ts"
import { handleCommand } from "./command.ts"
import { pruneOrphanBlobs } from "./blob-gc.ts"

/** Write the genesis covenant into an empty log; a log that has it is left as it is. */
export const ensureGenesis = Effect.map(
  handleCommand({ stream: Streams.chainA, projection: ChainProjection, decide: (s) => Either.right(decideGenesis(s)) }),
  (r) => ({ created: r !== undefined })
)

/** A ready ledger: the covenant, then the model spec and its genesis weights (both idempotent); orphan blobs pruned. */
export const initLedger = (spec: ModelSpec) =>
  Effect.gen(function* () {
    const { created } = yield* ensureGenesis
    const model = yield* publishGenesisModel(spec)
    const pruned = yield* pruneOrphanBlobs()
    return { genesis: created, ...model, pruned: pruned.length, recorded: created || model.specPublished || model.published > 0 || model.completed > 0 }
  })
