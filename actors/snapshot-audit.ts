import { Effect, Either, Option } from "effect"
import { SnapshotStore, type Snapshot, type SnapshotStoreApi } from "../domain/ports/snapshot-store.ts"
import type { Envelope } from "../domain/ledger/envelope.ts"
import { canonicalize } from "../domain/ledger/jcs.ts"
import { ledgerProjection, type LedgerState } from "../domain/projections/ledger-state.ts"

/**
 * What can be wrong with a snapshot: it cannot be read; it is of no projection this build keeps,
 * or of another codec version; the log at its seq is not the log it was taken from; or its state
 * (or its stream counts) differs from what the replay from genesis has at its seq.
 */
export type SnapshotProblem = "unreadable" | "foreign" | "stale" | "differs"

export type SnapshotFinding = {
  readonly projection: string
  readonly seq?: number
  readonly problem: SnapshotProblem
  readonly reason: string
  /** Whether the audit removed it, so that no command resumes from it (the next fold rebuilds it). */
  readonly removed: boolean
}

export type SnapshotRef = { readonly projection: string; readonly seq: number }

export type SnapshotAudit = {
  /** Snapshots equal, state and stream counts, to the replay's at their seq. */
  readonly verified: ReadonlyArray<SnapshotRef>
  /** Snapshots the replay did not reach (taken after the audited head, or past where it stopped): not checked. */
  readonly unchecked: ReadonlyArray<SnapshotRef>
  readonly bad: ReadonlyArray<SnapshotFinding>
}

type Found = Omit<SnapshotFinding, "removed"> & { readonly hash?: string }

/** Where a snapshot disagrees with the replay at its seq, if it does. */
const compare = (s: Snapshot, env: Envelope, state: LedgerState, streams: ReadonlyMap<string, number>): Found | undefined => {
  const at = { projection: s.projection, seq: s.seq, hash: s.hash }
  const which = `snapshot ${s.projection} at seq ${s.seq}`
  if (env.hash !== s.hash) return { ...at, problem: "stale", reason: `${which} is of another log: the log has ${env.hash} there, the snapshot ${s.hash}` }
  // Known and of this codec version: checked before the replay started.
  const { projection, stateOf } = ledgerProjection(s.projection)!
  const rebuilt = projection.snapshot!.encode(stateOf(state))
  if (Either.isLeft(rebuilt)) return { ...at, problem: "differs", reason: `${which} cannot be compared: the replay's state does not encode: ${rebuilt.left.message}` }
  if (canonicalize(rebuilt.right) !== canonicalize(s.state)) return { ...at, problem: "differs", reason: `${which} holds a state other than the replay's from genesis there` }
  if (canonicalize(s.streams) !== canonicalize(Object.fromEntries(streams)))
    return { ...at, problem: "differs", reason: `${which} holds stream counts other than the log's there` }
  return undefined
}

/** Why a snapshot cannot be checked against any replay by this build, if it cannot. */
const foreignness = (s: Snapshot): string | undefined => {
  const codec = ledgerProjection(s.projection)?.projection.snapshot
  if (codec === undefined) return `snapshot ${s.projection} is of no projection this build keeps snapshots of`
  return s.version === codec.version ? undefined : `snapshot ${s.projection} has codec version ${s.version}; this build reads version ${codec.version}`
}

/** Remove what was found bad, unless a writer has replaced it meanwhile with another snapshot. */
const settle = (store: SnapshotStoreApi, f: Found) =>
  Effect.gen(function* () {
    const current = yield* Effect.either(store.load(f.projection))
    const same = Either.isLeft(current) ? f.problem === "unreadable" : Option.exists(current.right, (s) => s.seq === f.seq && s.hash === f.hash)
    const removed = same && Either.isRight(yield* Effect.either(store.remove(f.projection)))
    const { hash: _, ...finding } = f
    return { ...finding, removed } satisfies SnapshotFinding
  })

/**
 * The snapshot part of an audit, run inside its one replay from genesis: `step` sees every
 * envelope the replay applied, with the replay's state just after it, and compares each snapshot
 * taken at that seq (in the codec's canonical form, which holds all of the state); `finish`
 * reports and removes the bad ones. A bad snapshot never fails the audit of a good log: it is
 * a cache, and removing it only means the next fold rebuilds it. Without a snapshot store there
 * is nothing to check.
 */
export const startSnapshotAudit = Effect.gen(function* () {
  const store = Option.getOrUndefined(yield* Effect.serviceOption(SnapshotStore))
  const listing = store === undefined ? Either.right({ snapshots: [], unreadable: [] }) : yield* Effect.either(store.list)
  const found: Found[] = []
  const pending = new Map<number, Snapshot[]>()
  // A store that cannot even be listed is reported as a whole; there is nothing in it to remove.
  const unlisted: SnapshotFinding[] = Either.isLeft(listing) ? [{ projection: "*", problem: "unreadable", reason: listing.left.message, removed: false }] : []
  if (Either.isRight(listing)) {
    for (const u of listing.right.unreadable) found.push({ projection: u.projection, problem: "unreadable", reason: u.message })
    for (const s of listing.right.snapshots) {
      const foreign = foreignness(s)
      if (foreign !== undefined) found.push({ projection: s.projection, seq: s.seq, hash: s.hash, problem: "foreign", reason: foreign })
      else pending.set(s.seq, [...(pending.get(s.seq) ?? []), s])
    }
  }
  const verified: SnapshotRef[] = []
  const streams = new Map<string, number>()
  return {
    /** Whether `step` has anything to do: without snapshots to compare, the replay need not call it. */
    watching: pending.size > 0,
    step: (env: Envelope, state: () => LedgerState) => {
      streams.set(env.stream, (streams.get(env.stream) ?? 0) + 1)
      const due = pending.get(env.seq)
      if (due === undefined) return
      pending.delete(env.seq)
      for (const s of due) {
        const problem = compare(s, env, state(), streams)
        if (problem === undefined) verified.push({ projection: s.projection, seq: s.seq })
        else found.push(problem)
      }
    },
    finish: Effect.gen(function* () {
      const bad = store === undefined ? [] : yield* Effect.forEach(found, (f) => settle(store, f))
      const unchecked = [...pending.values()].flat().map((s) => ({ projection: s.projection, seq: s.seq }))
      const audit: SnapshotAudit = { verified, unchecked, bad: [...unlisted, ...bad] }
      return audit
    })
  }
})
