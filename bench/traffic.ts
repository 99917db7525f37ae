/**
 * A ledger's everyday traffic for the benches: mostly inference receipts and their rewards, with a
 * node registered every 50 events, appended in batches of one stream each.
 */
import { Effect } from "effect"
import type { EventStoreApi } from "../domain/ports/event-store.ts"
import { newEvent, type NewEvent } from "../domain/ledger/events.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { Streams } from "../domain/ledger/streams.ts"

const BATCH = 1000

const hex = (s: string, n = 64) => sha256Hex(s).repeat(2).slice(0, n)

/** The i-th event of the ledger's traffic, and its stream. */
export const traffic = (i: number): readonly [string, NewEvent] => {
  if (i % 50 === 0)
    return [Streams.node(`n${i}`), newEvent("NodeRegistered", { node: `n${i}`, publicKey: hex(`pk${i}`), keyHash: hex(`key${i}`), device: "cuda:0", memory: 24e9, speed: 1 + (i % 7) })]
  if (i % 2 === 0) return [Streams.rewards, newEvent("RewardPaid", { to: `n${i - (i % 50)}`, amount: String(1000 + (i % 977)), kind: "inference", cause: `req-${i - 1}`, epoch: 0 })]
  return [
    Streams.inference,
    newEvent("InferenceServed", {
      request: `req-${i}`,
      part: 0,
      experts: [{ layer: i % 4, expert: i % 8, node: `n${i - (i % 50)}`, block: hex(`block${i % 64}`) }],
      tokens: 16 + (i % 100),
      receipts: [
        {
          requestId: `req-${i}.0`,
          node: `n${i - (i % 50)}`,
          layer: i % 4,
          expert: i % 8,
          block: hex(`block${i % 64}`),
          rows: 16 + (i % 100),
          inputDigest: hex(`in${i}`),
          outputDigest: hex(`out${i}`),
          signature: hex(`receipt${i}`, 128)
        }
      ],
      failures: []
    })
  ]
}

/** Append events `from`..`to`-1 of the traffic, in appends of one stream each, a few in flight. */
export const appendTraffic = (store: EventStoreApi, from: number, to: number) =>
  Effect.gen(function* () {
    for (let i = from; i < to; ) {
      const appends: Array<Array<readonly [string, NewEvent]>> = []
      for (let k = 0; k < 4 && i < to; k++) {
        const batch: Array<readonly [string, NewEvent]> = []
        for (const end = Math.min(i + BATCH, to); i < end; i++) batch.push(traffic(i))
        appends.push(batch)
      }
      // Each append holds one stream's events: split a batch by stream, keeping the order within each.
      const byStream = appends.flatMap((batch) => {
        const groups = new Map<string, NewEvent[]>()
        for (const [stream, e] of batch) groups.set(stream, [...(groups.get(stream) ?? []), e])
        return [...groups]
      })
      yield* Effect.forEach(byStream, ([stream, events]) => store.append(stream, events, "any"), { concurrency: "unbounded", discard: true })
    }
  })

