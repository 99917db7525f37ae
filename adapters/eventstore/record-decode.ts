import { Either } from "effect"
import { parseEnvelope, verifyLink, type Envelope, type Head } from "../../domain/ledger/envelope.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { StoreFailure } from "../../domain/ledger/errors.ts"

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * Decode the payloads of consecutive stored records, starting at `firstSeq` right after `prev`,
 * and verify each as the next link of the chain (its envelope schema, position, back-pointer and
 * own hash, and the shared genesis at seq 0). The first bad record is a StoreFailure naming its
 * seq; nothing after it is returned.
 */
export const decodeRecords = (
  payloads: ReadonlyArray<Uint8Array>,
  firstSeq: number,
  prev: Head | undefined
): Either.Either<Envelope[], StoreFailure> => {
  const out: Envelope[] = []
  let head = prev
  for (let i = 0; i < payloads.length; i++) {
    const seq = firstSeq + i
    const corrupt = (reason: string) => Either.left(new StoreFailure({ seq, reason: `corrupted event log: ${reason}` }))
    let text: string
    try {
      text = utf8.decode(payloads[i]!)
    } catch {
      return corrupt("record payload is not UTF-8")
    }
    const parsed = parseEnvelope(seq, text)
    if (Either.isLeft(parsed)) return corrupt(parsed.left.reason)
    const env = parsed.right
    const link = verifyLink(head, env)
    if (Either.isLeft(link)) return Either.left(new StoreFailure({ seq: link.left.seq, reason: `corrupted event log: ${link.left.reason}` }))
    if (env.seq === 0 && env.hash !== GENESIS_HASH) return corrupt("seq 0 is not the genesis covenant every install shares")
    out.push(env)
    head = { seq: env.seq, hash: env.hash }
  }
  return Either.right(out)
}
