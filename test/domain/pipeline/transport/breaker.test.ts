import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { closedBreaker, permit, settle, type BreakerState } from "../../../../domain/pipeline/transport/breaker.ts"

const settings = { threshold: 3, resetMs: 100 }

/** Calls to one peer: each asks at a later time, and ends (reached or not) at a later time still. */
const calls = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 80 }), ok: fc.boolean(), takes: fc.integer({ min: 0, max: 50 }) }), { maxLength: 60 })

describe("the transport's circuit breaker", () => {
  it("opens after `threshold` failures in a row, refuses everything until `resetMs` passed, then lets exactly one probe through, whose outcome closes it or opens it again (property)", () =>
    fc.assert(
      fc.property(calls, (cs) => {
        let s: BreakerState = closedBreaker
        let now = 0
        let streak = 0
        for (const c of cs) {
          now += c.gap
          const before = s
          const p = permit(s, now)
          s = p.state
          if (before._tag === "Open") expect(p.allowed).toBe(now >= before.until)
          if (before._tag === "Probing") expect(p.allowed).toBe(false)
          if (before._tag === "Closed") expect(p.allowed).toBe(true)
          if (!p.allowed) continue
          // While the probe is out, every other call is refused.
          if (s._tag === "Probing") expect(permit(s, now + c.takes).allowed).toBe(false)
          const probe = s._tag === "Probing"
          s = settle(s, c.ok, now + c.takes, settings)
          if (probe) expect(s).toEqual(c.ok ? closedBreaker : { _tag: "Open", until: now + c.takes + settings.resetMs })
          else {
            streak = c.ok ? 0 : streak + 1
            expect(s._tag).toBe(streak >= settings.threshold ? "Open" : "Closed")
            if (s._tag === "Open") streak = 0
          }
          now += c.takes
        }
      }),
      { numRuns: 1000 }
    ))
})
