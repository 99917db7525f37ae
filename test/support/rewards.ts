import { newEvent, type NewEvent } from "../../domain/ledger/events.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { signRegistration } from "../../domain/projections/contributors.ts"
import { defaultPoLSettings } from "../../domain/pol/evaluation.ts"
import { learningCause, learningReward, signOpening, signVerdict } from "../../domain/pol/rounds.ts"
import { makeBlock, testLedgerKey } from "./ledger.ts"

const validators = [1, 2, 3].map((i) => keyPairFromSeed(sha256Hex(`reward validator ${i}`)))

/**
 * The events by which the contributor whose key seed is `seed` earns a learning reward of
 * `basisPoints` hundredths of a percent, as a real round records it (registration on its first
 * reward, `n` keeping rounds apart): a reward the replay accepts. Returns the reward in base units.
 */
export const earnLearningReward = (seed: string, basisPoints: number, n: number, registered: Set<string>) => {
  const contributor = keyPairFromSeed(seed).publicKey
  const round = `r${n}`
  const stream = Streams.round(round)
  const improvement = basisPoints / 10_000
  const block = makeBlock("layer0.expert0", new Uint8Array(8).map((_, i) => (n * 8 + i) & 0xff), [GENESIS_HASH], seed)
  const verdict = (v: (typeof validators)[number]) =>
    newEvent(
      "PoLEvaluated",
      signVerdict({ round, contribution: "c", validator: v.publicKey, seed: n, baselineLoss: 2, candidateLoss: 2 * (1 - improvement), improvement, wins: 12, batches: 12, passes: true }, v.seed)
    )
  const events: Array<readonly [string, NewEvent]> = [
    ...(registered.has(contributor) ? [] : [[Streams.keys, newEvent("ContributorRegistered", signRegistration(contributor, testLedgerKey.seed))] as const]),
    [stream, newEvent("RoundOpened", signOpening({ round, target: block.name, base: GENESIS_HASH, ...defaultPoLSettings, heldOut: GENESIS_HASH, validators: validators.map((v) => v.publicKey) }, testLedgerKey))],
    [stream, newEvent("ContributionSubmitted", { round, contribution: "c", block })],
    [stream, verdict(validators[0]!)],
    [stream, verdict(validators[1]!)],
    [stream, newEvent("ContributionAccepted", { round, contribution: "c", block: block.hash, improvement })],
    [Streams.rewards, newEvent("RewardPaid", { to: contributor, amount: learningReward(improvement).toString(), kind: "learning", cause: learningCause(round, "c"), epoch: 0 })]
  ]
  registered.add(contributor)
  return { events, amount: learningReward(improvement) }
}
