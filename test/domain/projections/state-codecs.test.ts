import { Either } from "effect"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { canonicalize } from "../../../domain/ledger/jcs.ts"
import { decodeEvent, type Envelope } from "../../../domain/ledger/envelope.ts"
import { ChainProjection } from "../../../domain/projections/chain.ts"
import { ModelProjection } from "../../../domain/projections/model.ts"
import { NodesProjection } from "../../../domain/projections/nodes.ts"
import { PlansProjection } from "../../../domain/projections/plans.ts"
import type { Projection } from "../../../domain/projections/projection.ts"
import { foldLog } from "../../support/decider-spec.ts"
import { arbitraryRichLog } from "../../support/rich-log.ts"

const projections: ReadonlyArray<Projection<any, unknown>> = [ChainProjection, ModelProjection, NodesProjection, PlansProjection]

/** Through the codec and the text of a file, as a snapshot travels. */
const throughSnapshot = <S>(p: Projection<S, unknown>, state: S): S => {
  const codec = p.snapshot!
  const text = JSON.stringify(Either.getOrThrow(codec.encode(state)))
  return Either.getOrThrow(codec.decode(JSON.parse(text)))
}

const encoded = <S>(p: Projection<S, unknown>, s: S) => canonicalize(Either.getOrThrow(p.snapshot!.encode(s)))

const foldOn = <S>(p: Projection<S, unknown>, state: S, log: ReadonlyArray<Envelope>) => log.reduce((s, env) => p.evolve(s, Either.getOrThrow(decodeEvent(env))), state)

describe.each(projections.map((p) => [p.name, p] as const))("the %s projection's snapshot codec", (_, p) => {
  it("gives back the state it was given: same encoding, same view (property)", () => {
    fc.assert(
      fc.property(arbitraryRichLog(), (log) => {
        const state = foldLog(p, log)
        const back = throughSnapshot(p, state)
        expect(encoded(p, back)).toBe(encoded(p, state))
        expect(p.view(back)).toEqual(p.view(state))
      }),
      { numRuns: 60 }
    )
  })

  it("a state read back folds on exactly as the original: resuming anywhere gives the full fold (property)", () => {
    fc.assert(
      fc.property(arbitraryRichLog(), fc.nat(), (log, cut) => {
        const k = cut % (log.length + 1)
        const resumed = foldOn(p, throughSnapshot(p, foldLog(p, log.slice(0, k))), log.slice(k))
        const full = foldLog(p, log)
        expect(encoded(p, resumed)).toBe(encoded(p, full))
        expect(p.view(resumed)).toEqual(p.view(full))
      }),
      { numRuns: 60 }
    )
  })

  it("refuses what is not a state of its projection", () => {
    const good = Either.getOrThrow(p.snapshot!.encode(p.initial()))
    for (const bad of [null, 42, "state", [], [[1, 2, 3]], { ...(typeof good === "object" && !Array.isArray(good) ? good : {}), extra: 1 }]) {
      if (canonicalize(bad) === canonicalize(good)) continue
      expect(Either.isLeft(p.snapshot!.decode(bad))).toBe(true)
    }
  })
})

describe("the model codec", () => {
  it("rebuilds the index of versions as the very entries of the history, so a later reason updates both", () => {
    fc.assert(
      fc.property(arbitraryRichLog(), (log) => {
        const back = throughSnapshot(ModelProjection, foldLog(ModelProjection, log))
        expect(back.versions.size).toBe(foldLog(ModelProjection, log).versions.size)
        for (const [block, v] of back.versions) {
          expect(v.block).toBe(block)
          expect([...back.history.values()].some((list) => list.includes(v))).toBe(true)
        }
      }),
      { numRuns: 40 }
    )
  })
})
