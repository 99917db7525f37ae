/**
 * BLY balances: integer base units per address (a node id, or an ed25519 public key in hex),
 * credited by `RewardPaid` and moved by signed `TransferMade`. Supply is the sum of rewards: a
 * transfer moves units, it never makes or destroys any. What each issuance epoch issued is kept
 * beside, for its cap.
 */
import { Either, Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { newEvent, type EventData, type NewEvent } from "../ledger/events.ts"
import { signHex, verifyHex } from "../ledger/signing.ts"
import type { NodesState } from "./nodes.ts"
import type { Projection } from "./projection.ts"
import { schemaCodec } from "./state-codec.ts"

export type BalancesState = {
  readonly balances: Map<string, bigint>
  /** The last nonce each address signed a transfer with. */
  readonly nonces: Map<string, number>
  supply: bigint
  /** Base units issued per issuance epoch. */
  readonly issued: Map<number, bigint>
  /** The latest epoch a reward was paid in. */
  epoch: number
}

const Units = Schema.BigInt
const BalancesStateSchema = Schema.Struct({
  balances: Schema.Map({ key: Schema.String, value: Units }),
  nonces: Schema.Map({ key: Schema.String, value: Schema.Number }),
  supply: Units,
  issued: Schema.Map({ key: Schema.Number, value: Units }),
  epoch: Schema.Number
})

export const BalancesProjection: Projection<BalancesState, unknown> = {
  name: "balances",
  initial: () => ({ balances: new Map(), nonces: new Map(), supply: 0n, issued: new Map(), epoch: 0 }),
  evolve: (s, e) => {
    const add = (addr: string, units: bigint) => s.balances.set(addr, (s.balances.get(addr) ?? 0n) + units)
    if (e.type === "RewardPaid") {
      const amount = BigInt(e.data.amount)
      add(e.data.to, amount)
      s.supply += amount
      s.issued.set(e.data.epoch, (s.issued.get(e.data.epoch) ?? 0n) + amount)
      s.epoch = Math.max(s.epoch, e.data.epoch)
    }
    if (e.type === "TransferMade") {
      add(e.data.from, -BigInt(e.data.amount))
      add(e.data.to, BigInt(e.data.amount))
      s.nonces.set(e.data.from, e.data.nonce)
    }
    return s
  },
  view: (s) => ({ supply: s.supply.toString(), balances: [...s.balances].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, units]) => ({ address, units: units.toString() })) }),
  snapshot: schemaCodec(2, BalancesStateSchema)
}

export class TransferRefused extends Schema.TaggedError<TransferRefused>()("TransferRefused", { message: Schema.String }) {
  static because = (reason: string) => new TransferRefused({ message: `transfer refused: ${reason}` })
}

type TransferClaim = Omit<EventData<"TransferMade">, "signature">

const claimHex = (t: TransferClaim) => Buffer.from(canonicalize({ from: t.from, to: t.to, amount: t.amount, nonce: t.nonce }), "utf8").toString("hex")

export const signTransfer = (t: TransferClaim, seedHex: string): EventData<"TransferMade"> => ({ ...t, signature: signHex(seedHex, claimHex(t)) })

const KEY = /^[0-9a-f]{64}$/

/** The public key that signs for `address`: a registered node's key, or the address itself when it is a key. */
const keyOf = (address: string, nodes: NodesState): string | undefined => nodes.get(address)?.publicKey ?? (KEY.test(address) ? address : undefined)

/** Why `t` cannot be applied to these balances, if it cannot: a wrong signature, a replayed or skipped nonce, too little BLY. */
export const transferProblem = (s: BalancesState, nodes: NodesState, t: EventData<"TransferMade">): string | undefined => {
  const key = keyOf(t.from, nodes)
  if (key === undefined) return `${t.from} is neither a registered node nor a public key`
  if (!verifyHex(key, claimHex(t), t.signature)) return `the signature is not ${t.from}'s`
  const next = (s.nonces.get(t.from) ?? 0) + 1
  if (t.nonce !== next) return t.nonce < next ? `nonce ${t.nonce} was used already (a replay); the next is ${next}` : `nonce ${t.nonce} skips ahead; the next is ${next}`
  if (t.from === t.to) return "a transfer to oneself"
  const amount = BigInt(t.amount)
  if (amount === 0n) return "nothing to transfer"
  const balance = s.balances.get(t.from) ?? 0n
  return balance < amount ? `${t.from} holds ${balance} base units, not ${amount}` : undefined
}

export const decideTransfer = (s: BalancesState, nodes: NodesState, t: EventData<"TransferMade">): Either.Either<ReadonlyArray<NewEvent>, TransferRefused> => {
  const problem = transferProblem(s, nodes, t)
  return problem === undefined ? Either.right([newEvent("TransferMade", t)]) : Either.left(TransferRefused.because(problem))
}
