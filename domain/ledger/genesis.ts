import type { Covenant } from "./events.ts"
import { seal, type Envelope } from "./envelope.ts"
import { ZERO_HASH } from "./hash.ts"
import { Streams } from "./streams.ts"

/** The Human-AI covenant every Blyan ledger starts from. Changing a single character forks the network. */
export const GENESIS_COVENANT: Covenant = {
  title: "Blyan Human-AI Covenant",
  version: "1",
  principles: [
    {
      name: "transparency",
      text: "Every weight of the model, every change to it and every answer it gives is recorded on a public ledger that anyone may read and replay."
    },
    {
      name: "human oversight",
      text: "People can always see which parts of the model produced an answer, and can stop, ban or retire any node or contribution that breaks this covenant."
    },
    {
      name: "community governance",
      text: "The model improves only through contributions that an open quorum of validators has measured to be better on data they choose themselves."
    },
    {
      name: "protection against malicious modification",
      text: "No weight changes in secret: each block is hash-linked, signed by its contributor and verified on replay, and a single altered byte is detected."
    }
  ]
}

export const GENESIS_AT = "2025-01-25T00:00:00.000Z"

export const genesisEnvelope = (): Envelope =>
  seal({ seq: 0, stream: Streams.chainA, type: "GenesisCovenantSealed", version: 1, at: GENESIS_AT, data: GENESIS_COVENANT, prev: ZERO_HASH })

/** Shared by every install; a test recomputes it from the covenant above. */
export const GENESIS_HASH = "9acd1857454b356184af425b08ca074c3c63b585eb7802c5d247d6a122e5c09d"
