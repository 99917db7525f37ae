import { describe, expect, it } from "vitest"
import { replay } from "../../../domain/ledger/audit.ts"
import { newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../../domain/ledger/signing.ts"
import { Streams } from "../../../domain/ledger/streams.ts"
import { GENESIS_HASH } from "../../../domain/ledger/genesis.ts"
import { signRegistration } from "../../../domain/projections/contributors.ts"
import { learningCause, learningReward, signOpening, signVerdict } from "../../../domain/pol/rounds.ts"
import { defaultPoLSettings } from "../../../domain/pol/evaluation.ts"
import { sealLog } from "../../support/decider-spec.ts"
import { contributorSeed, makeBlock, testLedgerKey, testTrust } from "../../support/ledger.ts"

const contributor = keyPairFromSeed(contributorSeed(1))
const validators = [1, 2, 3].map((i) => keyPairFromSeed(sha256Hex(`v${i}`)))
const base = makeBlock("layer0.expert1", new Uint8Array(8).fill(1))
const candidate = makeBlock("layer0.expert1", new Uint8Array(8).fill(2), [base.hash])
const round = "layer0.expert1-r1"
const stream = Streams.round(round)
const verdict = (i: number, improvement: number, passes = improvement >= 0.01) =>
  newEvent(
    "PoLEvaluated",
    signVerdict({ round, contribution: "c1", validator: validators[i]!.publicKey, seed: 7, baselineLoss: 2, candidateLoss: 2 * (1 - improvement), improvement, wins: 16, batches: 16, passes }, validators[i]!.seed)
  )

/** A registered contributor, its base block, and a round on it with one contribution. */
const opened: Array<readonly [string, NewEvent]> = [
  [Streams.keys, newEvent("ContributorRegistered", signRegistration(contributor.publicKey, testLedgerKey.seed))],
  [Streams.chainB, newEvent("BlockAppended", base)],
  [stream, newEvent("RoundOpened", signOpening({ round, target: "layer0.expert1", base: base.hash, ...defaultPoLSettings, heldOut: GENESIS_HASH, validators: validators.map((v) => v.publicKey) }, testLedgerKey))],
  [stream, newEvent("ContributionSubmitted", { round, contribution: "c1", block: candidate })]
]

const firstBad = (more: ReadonlyArray<readonly [string, NewEvent]>) => replay(sealLog([...opened, ...more]), testTrust).firstBad

describe("rounds on replay", () => {
  it("an honest round replays: the quorum's verdicts, the acceptance with the least measured gain, the block and the reward", () => {
    expect(
      firstBad([
        [stream, verdict(0, 0.03)],
        [stream, verdict(1, 0.02)],
        [stream, newEvent("ContributionAccepted", { round, contribution: "c1", block: candidate.hash, improvement: 0.02 })],
        [Streams.chainB, newEvent("BlockAppended", candidate)],
        [Streams.rewards, newEvent("RewardPaid", { to: contributor.publicKey, amount: learningReward(0.02).toString(), kind: "learning", cause: learningCause(round, "c1"), epoch: 0 })],
        [stream, newEvent("RoundClosed", { round, accepted: 1, rejected: 0 })]
      ])
    ).toBeUndefined()
  })

  it("refuses what the coordinator would not write, naming why", () => {
    const intruder = keyPairFromSeed(sha256Hex("intruder"))
    const cases: ReadonlyArray<readonly [ReadonlyArray<readonly [string, NewEvent]>, string]> = [
      [[[stream, verdict(0, 0.03, false)]], "its own figures say otherwise"],
      [[[stream, verdict(0, 0.03)], [stream, verdict(0, 0.03)]], "a second verdict by"],
      [[[stream, newEvent("PoLEvaluated", { ...(verdict(0, 0.03).data as object), validator: intruder.publicKey } as never)]], "who is not a validator"],
      [[[stream, newEvent("PoLEvaluated", { ...(verdict(0, 0.03).data as object), improvement: 0.5 } as never)]], "the signature is not"],
      [[[stream, verdict(0, 0.03)], [stream, newEvent("ContributionAccepted", { round, contribution: "c1", block: candidate.hash, improvement: 0.03 })]], "without the quorum"],
      [[[stream, verdict(0, 0.03)], [stream, verdict(1, 0.02)], [stream, newEvent("ContributionAccepted", { round, contribution: "c1", block: candidate.hash, improvement: 0.03 })]], "measured at least 0.02"],
      [
        [
          [stream, verdict(0, 0.03)],
          [stream, verdict(1, 0.02)],
          [stream, newEvent("ContributionAccepted", { round, contribution: "c1", block: candidate.hash, improvement: 0.02 })],
          [Streams.rewards, newEvent("RewardPaid", { to: contributor.publicKey, amount: (learningReward(0.02) + 1n).toString(), kind: "learning", cause: learningCause(round, "c1"), epoch: 0 })]
        ],
        "which earned"
      ],
      [[[Streams.round("other"), newEvent("RoundOpened", signOpening({ round: "other", target: "x", base: base.hash, ...defaultPoLSettings, heldOut: GENESIS_HASH, validators: [intruder.publicKey] }, intruder))]], "not a ledger key trusted here"]
    ]
    for (const [more, why] of cases) expect(firstBad(more)?.reason, why).toContain(why)
  })
})
