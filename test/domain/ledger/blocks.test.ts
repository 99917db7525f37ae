import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { checkBlock, signBlock, headerOf } from "../../../domain/ledger/blocks.ts"
import { GENESIS_HASH } from "../../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { contributorSeed, makeBlock } from "../../support/ledger.ts"

const payload = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])
const fact = { sha256: sha256Hex(payload), size: payload.length }

describe("block validity", () => {
  it("accepts a signed block whose dependencies and payload are known", () => {
    const b = makeBlock("layer0.expert0", payload)
    expect(Either.isRight(checkBlock((h) => h === GENESIS_HASH, b, fact))).toBe(true)
  })

  it("names every way a block can be invalid", () => {
    const known = (h: string) => h === GENESIS_HASH
    const b = makeBlock("layer0.expert0", payload)
    const reason = (x: typeof b, p: Parameters<typeof checkBlock>[2] = fact) =>
      Either.getLeft(checkBlock(known, x, p)).pipe((o) => (o._tag === "Some" ? o.value.message : "valid"))
    expect(reason({ ...b, size: 9 })).toMatch(/hash does not match/)
    expect(reason({ ...b, signature: signBlock(headerOf(b), contributorSeed(2)).signature })).toMatch(/signature does not verify/)
    expect(reason(makeBlock("x", payload, ["ab".repeat(32)]))).toMatch(/unknown block/)
    expect(reason(makeBlock("x", payload, [GENESIS_HASH, GENESIS_HASH]))).toMatch(/same block twice/)
    expect(reason(b, "missing")).toMatch(/missing/)
    expect(reason(b, { sha256: "cd".repeat(32), size: 8 })).toMatch(/hashes to/)
    expect(reason(b, { sha256: fact.sha256, size: 7 })).toMatch(/7 bytes/)
    expect(Either.isLeft(checkBlock((h) => h === GENESIS_HASH || h === b.hash, b, fact))).toBe(true)
  })

  it("DAG rule: whatever order blocks are offered in, only those whose dependencies came first join, so no cycle can form (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: 1, maxLength: 12 }),
        fc.func(fc.integer()),
        (depSpecs, order) => {
          // Block i may depend on any block j (including later ones and itself): a would-be cycle.
          const blocks: ReturnType<typeof makeBlock>[] = []
          const hashes: string[] = []
          depSpecs.forEach((deps, i) => {
            const d = [...new Set(deps.map((x) => x % (i + 1)))].map((j) => (j === i ? GENESIS_HASH : hashes[j]!))
            const b = makeBlock(`b${i}`, new Uint8Array(4).fill(i), d.length ? d : [GENESIS_HASH])
            blocks.push(b)
            hashes.push(b.hash)
          })
          const offered = blocks.map((b, i) => ({ b, k: order(i) })).sort((x, y) => x.k - y.k).map((x) => x.b)
          const accepted = new Set<string>([GENESIS_HASH])
          const position = new Map<string, number>()
          for (const b of offered) {
            const ok = checkBlock((h) => accepted.has(h), b, { sha256: b.payload, size: b.size })
            const depsKnown = b.dependsOn.every((h) => accepted.has(h))
            expect(Either.isRight(ok)).toBe(depsKnown)
            if (Either.isRight(ok)) {
              accepted.add(b.hash)
              position.set(b.hash, position.size)
            }
          }
          // Accepted blocks are topologically ordered: every dependency precedes its dependant.
          for (const b of blocks)
            if (position.has(b.hash)) for (const d of b.dependsOn) if (d !== GENESIS_HASH) expect(position.get(d)!).toBeLessThan(position.get(b.hash)!)
        }
      ),
      { numRuns: 60 }
    )
  })
})
