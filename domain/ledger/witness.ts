/**
 * What a witness decides about a tree head a ledger offers it, given the last head it co-signed:
 * co-sign a head that extends it (shown by a consistency proof), do nothing for the same head, and
 * refuse anything else as a fork, with the reason. A witness never co-signs two heads that cannot
 * both be prefixes of one log, so a rewritten log cannot gather its signatures.
 */
import { fromHex, verifyConsistency } from "./merkle.ts"
import type { TreeHead } from "./tree-head.ts"

export type Judgement =
  | { readonly kind: "cosign" }
  | { readonly kind: "same" }
  /** The offered head is larger: its consistency with the held one must be shown first. */
  | { readonly kind: "prove"; readonly from: number; readonly to: number }
  | { readonly kind: "fork"; readonly reason: string }

/** The judgement on `offered` against `held`, with `proof` (hex hashes) once one was asked for. */
export const judgeHead = (held: TreeHead | undefined, offered: TreeHead, proof?: ReadonlyArray<string>): Judgement => {
  if (held === undefined) return { kind: "cosign" }
  if (offered.origin !== held.origin) return { kind: "fork", reason: `the head is of log ${offered.origin}, not ${held.origin}` }
  if (offered.size < held.size) return { kind: "fork", reason: `the log has ${offered.size} events, fewer than the ${held.size} already witnessed: it was cut short` }
  if (offered.size === held.size)
    return offered.root === held.root
      ? { kind: "same" }
      : { kind: "fork", reason: `two roots for the log's first ${held.size} events: ${held.root} witnessed, ${offered.root} offered` }
  if (proof === undefined) return { kind: "prove", from: held.size, to: offered.size }
  const valid = proof.every((h) => /^[0-9a-f]{64}$/.test(h))
  return valid && verifyConsistency(held.size, offered.size, fromHex(held.root), fromHex(offered.root), proof.map(fromHex))
    ? { kind: "cosign" }
    : { kind: "fork", reason: `the log of ${offered.size} events (root ${offered.root}) is not shown to extend the ${held.size} witnessed (root ${held.root}): its first events were rewritten` }
}
