import { Either } from "effect"
import fc from "fast-check"
import { signBlock } from "../../domain/ledger/blocks.ts"
import { newEvent, type BlockAppendedData, type BlockKind, type NewEvent } from "../../domain/ledger/events.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import type { Plan } from "../../domain/pipeline/plan.ts"
import { KeysProjection, decideIssueKey, decideRevokeKey, type KeysState } from "../../domain/projections/keys.ts"
import { PlansProjection, decideFreeze, decidePromote, type PlansState } from "../../domain/projections/plans.ts"
import { ContributorsProjection, decideRegisterContributor, signRegistration, type ContributorsState } from "../../domain/projections/contributors.ts"
import { extendLog, sealLog } from "./decider-spec.ts"
import { decodeEvent } from "../../domain/ledger/envelope.ts"

export const contributorSeed = (n: number) => sha256Hex(`contributor-${n}`)

/** The ledger key of the test logs: it registers their contributors. */
export const testLedgerKey = keyPairFromSeed(sha256Hex("test ledger key"))
/** What a replay of the test logs trusts. */
export const testTrust = { ledgerKeys: [testLedgerKey.publicKey] }

/** A signed block over `payload`, depending on `deps` (genesis when none are given). */
export const makeBlock = (name: string, payload: Uint8Array, deps: ReadonlyArray<string> = [GENESIS_HASH], seed = contributorSeed(1), kind: BlockKind = "expert"): BlockAppendedData =>
  signBlock(
    {
      name,
      kind,
      payload: sha256Hex(payload),
      size: payload.length,
      dtype: "f32",
      tensors: [{ name: "w", shape: [payload.length / 4] }],
      dependsOn: [...deps],
      contributor: keyPairFromSeed(seed).publicKey
    },
    seed
  )

/** One step of a random history; each is turned into the events a real writer would append. */
type Op =
  | { readonly k: "issue" | "revoke"; readonly n: number }
  | { readonly k: "block"; readonly part: number; readonly fork: boolean; readonly n: number }
  | { readonly k: "node"; readonly n: number; readonly retire: boolean }
  | { readonly k: "plan"; readonly n: number; readonly freeze: boolean }

const parts = ["layer0.expert0", "layer0.expert1", "layer1.expert0", "layer0.router"]

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constantFrom("issue" as const, "revoke" as const), n: fc.nat({ max: 5 }) }),
  fc.record({ k: fc.constant("block" as const), part: fc.nat({ max: parts.length - 1 }), fork: fc.boolean(), n: fc.nat({ max: 1000 }) }),
  fc.record({ k: fc.constant("node" as const), n: fc.nat({ max: 3 }), retire: fc.boolean() }),
  fc.record({ k: fc.constant("plan" as const), n: fc.nat({ max: 3 }), freeze: fc.boolean() })
)

type History = { readonly keys: KeysState; readonly plans: PlansState; readonly contributors: ContributorsState; readonly current: Map<string, string>; blocks: number }

/** The events of `o` on the history so far, following each decider's rules (nothing when they refuse). */
const eventsOf = (o: Op, history: History): Array<readonly [string, NewEvent]> => {
  const { keys, plans, current } = history
  switch (o.k) {
    case "issue":
    case "revoke": {
      const d = o.k === "issue" ? decideIssueKey(keys, sha256Hex(`key-${o.n}`), o.n % 2 ? "node" : "validator") : decideRevokeKey(keys, sha256Hex(`key-${o.n}`))
      return Either.getOrElse(d, () => []).map((e) => [Streams.keys, e] as const)
    }
    case "block": {
      const name = parts[o.part]!
      const parent = o.fork ? GENESIS_HASH : (current.get(name) ?? GENESIS_HASH)
      // The block count in the payload keeps two blocks with the same parent distinct.
      const b = makeBlock(name, new Uint8Array(8).map((_, i) => (i === 0 ? history.blocks++ : o.n + i * 7) & 0xff), [parent], contributorSeed(o.n % 3), name.endsWith("router") ? "router" : "expert")
      current.set(name, b.hash)
      // A contributor's first block comes after its registration, as a real writer's must.
      const registration = Either.getOrElse(decideRegisterContributor(history.contributors, signRegistration(b.contributor, testLedgerKey.seed)), () => [])
      const out: Array<readonly [string, NewEvent]> = [...registration.map((e) => [Streams.keys, e] as const), [Streams.chainB, newEvent("BlockAppended", b)]]
      const ref = /^layer(\d+)\.expert(\d+)$/.exec(name)
      if (ref) out.push([Streams.expert(Number(ref[1]), Number(ref[2])), newEvent("ExpertUpdated", { name, block: b.hash, previous: parent === GENESIS_HASH ? null : parent, reason: `op ${o.n}` })])
      return out
    }
    case "node":
      return [
        [
          Streams.node(`n${o.n}`),
          o.retire
            ? newEvent("NodeRetired", { node: `n${o.n}` })
            : newEvent("NodeRegistered", { node: `n${o.n}`, publicKey: keyPairFromSeed(contributorSeed(o.n)).publicKey, keyHash: sha256Hex(`key-${o.n}`), device: "cpu", memory: 1e9, speed: o.n + 1 })
        ]
      ]
    case "plan": {
      const plan: Plan = { planId: `p${o.n}`, epoch: `E${o.n}`, round: "round_0", stages: [{ node: `n${o.n}`, start: 0, end: 3 }], zero1: false, actCkpt: false }
      const promoted = Either.getOrElse(decidePromote(plans, plan), () => []).map((e) => [Streams.epoch(plan.epoch), e] as const)
      const frozen = o.freeze && (promoted.length > 0 || plans.plans.has(plan.planId)) ? Either.getOrElse(decideFreeze(plans, plan), () => []) : []
      return [...promoted, ...frozen.map((e) => [Streams.chainA, e] as const)]
    }
  }
}

/** Random valid logs: keys, blocks (lineages and forks from genesis), nodes and plans, built through the deciders' rules. */
export const arbitraryLog = (maxOps = 30): fc.Arbitrary<ReadonlyArray<Envelope>> =>
  fc.array(op, { maxLength: maxOps }).map((ops) => {
    const history: History = { keys: KeysProjection.initial(), plans: PlansProjection.initial(), contributors: ContributorsProjection.initial(), current: new Map(), blocks: 0 }
    let log = sealLog([])
    for (const o of ops) {
      const more = extendLog(log, eventsOf(o, history))
      for (const env of more.slice(log.length)) {
        const e = Either.getOrThrow(decodeEvent(env))
        KeysProjection.evolve(history.keys, e)
        PlansProjection.evolve(history.plans, e)
        ContributorsProjection.evolve(history.contributors, e)
      }
      log = more
    }
    return log
  })
