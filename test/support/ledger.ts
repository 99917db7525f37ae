import { Effect } from "effect"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { signBlock } from "../../domain/ledger/blocks.ts"
import { newEvent, type BlockAppendedData, type BlockKind } from "../../domain/ledger/events.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import type { Envelope } from "../../domain/ledger/envelope.ts"
import { genesisEvent, keyIssued } from "./events.ts"

export const contributorSeed = (n: number) => sha256Hex(`contributor-${n}`)

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

/** A small but varied valid log: genesis, keys, a chain of blocks, node events. */
export const sampleLog = (n: number): Promise<ReadonlyArray<Envelope>> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* makeMemoryEventStore()
      yield* store.append("chain-A", [genesisEvent()], "no_stream")
      let parent = GENESIS_HASH
      for (let i = 0; i < n; i++) {
        if (i % 3 === 0) yield* store.append("keys", [keyIssued(i)], "any")
        else if (i % 3 === 1) {
          const b = makeBlock(`layer0.expert${i % 4}`, new Uint8Array(8).fill(i), [parent])
          yield* store.append("chain-B", [newEvent("BlockAppended", b)], "any")
          parent = b.hash
        } else yield* store.append(`node-n${i}`, [newEvent("NodeRetired", { node: `n${i}` })], "any")
      }
      return yield* store.readAll()
    })
  )
