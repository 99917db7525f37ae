/**
 * The decision of a round from its validators' votes: accepted once at least two thirds of the
 * registered validators voted that the candidate passes; rejected once so many voted against
 * that two thirds can no longer be reached, or when the deadline passes first. Only registered
 * validators count, each once (its first vote). Fewer than a third, voting however they like,
 * can neither force an accept nor block one the others all pass.
 */

export type Vote = { readonly validator: string; readonly passes: boolean }

export type Decision =
  | { readonly kind: "accepted"; readonly for: number; readonly quorum: number }
  | { readonly kind: "rejected"; readonly reason: string }
  | { readonly kind: "pending"; readonly for: number; readonly against: number; readonly quorum: number }

/** Votes needed of `validators` registered ones: two thirds, rounded up. */
export const quorumOf = (validators: number): number => Math.ceil((2 * validators) / 3)

export const decideRound = (registered: ReadonlySet<string>, votes: ReadonlyArray<Vote>, deadlinePassed: boolean): Decision => {
  const n = registered.size
  const quorum = quorumOf(n)
  if (n === 0) return { kind: "rejected", reason: "no validator is registered" }
  const counted = new Map<string, boolean>()
  for (const v of votes) if (registered.has(v.validator) && !counted.has(v.validator)) counted.set(v.validator, v.passes)
  const yes = [...counted.values()].filter((p) => p).length
  const no = counted.size - yes
  if (yes >= quorum) return { kind: "accepted", for: yes, quorum }
  if (n - no < quorum) return { kind: "rejected", reason: `${no} of ${n} validators found no improvement: a quorum of ${quorum} can no longer agree` }
  if (deadlinePassed) return { kind: "rejected", reason: `no quorum before the deadline: ${yes} of the ${quorum} votes needed (${counted.size} of ${n} validators voted)` }
  return { kind: "pending", for: yes, against: no, quorum }
}
