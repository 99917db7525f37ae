/**
 * Paying rewards: what was earned, capped by what its issuance epoch has left, decided on the
 * rewards stream and appended expecting the revision the decision saw, so that payers running
 * side by side (the router paying nodes, the round coordinator paying contributors) never issue
 * past a cap between them.
 */
import { Clock, Effect, Either } from "effect"
import { Streams } from "../domain/ledger/streams.ts"
import { BalancesProjection } from "../domain/projections/balances.ts"
import { ISSUANCE, payRewards, type Owed } from "../domain/rewards/issuance.ts"
import { handleCommand } from "./command.ts"

export const payOwed = (owed: ReadonlyArray<Owed>) =>
  Effect.gen(function* () {
    if (owed.length === 0) return
    const now = yield* Clock.currentTimeMillis
    yield* handleCommand({ stream: Streams.rewards, projection: BalancesProjection, decide: (s) => Either.right(payRewards(ISSUANCE, s, owed, now)) })
  })
