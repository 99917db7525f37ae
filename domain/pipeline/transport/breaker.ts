/**
 * A circuit breaker per peer of the pipeline's transport, as a pure state and two transitions.
 * Closed, it counts failures in a row; at `threshold` it opens and refuses every call for
 * `resetMs`; then exactly one call goes through as a probe (the half-open state) while every
 * other is still refused, and that probe's outcome closes it or opens it for another `resetMs`.
 */

export type BreakerState =
  | { readonly _tag: "Closed"; readonly failures: number }
  | { readonly _tag: "Open"; readonly until: number }
  /** Half-open: the one probe is out. */
  | { readonly _tag: "Probing" }

export type BreakerSettings = { readonly threshold: number; readonly resetMs: number }

export const closedBreaker: BreakerState = { _tag: "Closed", failures: 0 }

/** Whether a call may go at `now`, and the state once it is asked. */
export const permit = (s: BreakerState, now: number): { readonly allowed: boolean; readonly state: BreakerState } => {
  switch (s._tag) {
    case "Closed":
      return { allowed: true, state: s }
    case "Open":
      return now >= s.until ? { allowed: true, state: { _tag: "Probing" } } : { allowed: false, state: s }
    case "Probing":
      return { allowed: false, state: s }
  }
}

/**
 * The state once a permitted call ended at `now`: `ok` when the peer answered (even to refuse),
 * not when it could not be reached. An outcome that arrives while open (a call let through before
 * it opened) changes nothing: only the probe decides.
 */
export const settle = (s: BreakerState, ok: boolean, now: number, settings: BreakerSettings): BreakerState => {
  switch (s._tag) {
    case "Closed": {
      if (ok) return s.failures === 0 ? s : closedBreaker
      const failures = s.failures + 1
      return failures >= settings.threshold ? { _tag: "Open", until: now + settings.resetMs } : { _tag: "Closed", failures }
    }
    case "Probing":
      return ok ? closedBreaker : { _tag: "Open", until: now + settings.resetMs }
    case "Open":
      return s
  }
}
