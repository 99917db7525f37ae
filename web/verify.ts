/**
 * The log checked in the browser, trusting no server: every envelope's hash re-derived with
 * WebCrypto from the same definition the store uses, every link to the one before, from the genesis
 * covenant every install shares. The first thing wrong is named with its seq.
 */
import { envelopeHashInput } from "../domain/ledger/envelope-hash-input.ts"
import { canonicalize } from "../domain/ledger/jcs.ts"

export type StoredEnvelope = { seq: number; stream: string; type: string; version: number; at: string; data?: unknown; prev: string; hash: string }
export type Verdict = { readonly ok: true; readonly events: number; readonly head: string } | { readonly ok: false; readonly seq: number; readonly reason: string }

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("")
const sha256 = async (text: string) => hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))

/** Check `pages` of envelopes, in seq order, against each other and the genesis hash. */
export const verifyLog = async (pages: AsyncIterable<ReadonlyArray<StoredEnvelope>>, genesis: string): Promise<Verdict> => {
  let previous: StoredEnvelope | undefined
  let events = 0
  for await (const page of pages)
    for (const e of page) {
      const expectedSeq = previous === undefined ? 0 : previous.seq + 1
      if (e.seq !== expectedSeq) return { ok: false, seq: e.seq, reason: `expected seq ${expectedSeq}` }
      const expectedPrev = previous === undefined ? "0".repeat(64) : previous.hash
      if (e.prev !== expectedPrev) return { ok: false, seq: e.seq, reason: `its back-pointer is not the hash of seq ${e.seq - 1}` }
      const actual = await sha256(envelopeHashInput(e, e.data === undefined ? undefined : canonicalize(e.data)))
      if (actual !== e.hash) return { ok: false, seq: e.seq, reason: `its contents hash to ${actual}, not ${e.hash}` }
      if (e.seq === 0 && e.hash !== genesis) return { ok: false, seq: 0, reason: "seq 0 is not the genesis covenant every install shares" }
      previous = e
      events++
    }
  return previous === undefined ? { ok: false, seq: 0, reason: "the log is empty" } : { ok: true, events, head: previous.hash }
}
