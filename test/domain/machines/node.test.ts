import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { createActor, initialTransition, transition } from "xstate"
import { announcement, nodeMachine, nodeStatus, type NodeMachineEvent, type NodeSnapshot } from "../../../domain/machines/node.ts"
import { prepareEvent } from "../../../domain/ledger/envelope.ts"

const hash = (c: string) => c.repeat(64)
const [A, B, C] = [hash("a"), hash("b"), hash("c")]

/** Fold events through the pure transition, collecting what the ledger records on the way. */
const fold = (events: ReadonlyArray<NodeMachineEvent>) => {
  let [s] = initialTransition(nodeMachine)
  const statuses = [nodeStatus(s)]
  const recorded = []
  for (const e of events) {
    const [next] = transition(nodeMachine, s, e)
    const a = announcement(s, next)
    if (a) recorded.push(a)
    s = next
    statuses.push(nodeStatus(s))
  }
  return { snapshot: s, statuses, recorded }
}

const start: NodeMachineEvent[] = [
  { type: "registered", node: "n1" },
  { type: "synced", head: 41 },
  { type: "loaded", blocks: { "layer0.expert1": A, "layer1.expert0": B } }
]

describe("node lifecycle machine", () => {
  it("registers, syncs, loads and serves, announcing its blocks; drains on SIGTERM and retires", () => {
    const r = fold([...start, { type: "drain" }, { type: "drained" }])
    expect(r.statuses).toEqual(["registering", "syncing", "loading", "serving.steady", "draining", "stopped"])
    expect(r.recorded).toEqual([
      { type: "NodeExpertsAnnounced", version: 1, data: { node: "n1", blocks: [A, B] } },
      { type: "NodeRetired", version: 1, data: { node: "n1" } }
    ])
    expect(r.snapshot.status).toBe("done")
    expect(r.snapshot.context.head).toBe(41)
  })

  it("a refused registration, a ban or a failure ends in failed with the reason, and nothing moves it after", () => {
    const refused = fold([{ type: "refused", reason: "API key revoked" }, ...start])
    expect(nodeStatus(refused.snapshot)).toBe("failed")
    expect(refused.snapshot.context.reason).toBe("registration refused: API key revoked")
    expect(refused.recorded).toEqual([])
    const banned = fold([...start, { type: "banned", reason: "spot-check disagreed" }, { type: "drained" }])
    expect(banned.statuses.slice(-2)).toEqual(["failed", "failed"])
    expect(banned.snapshot.context.reason).toBe("banned: spot-check disagreed")
    const broken = fold([start[0]!, { type: "failed", reason: "replica: broken hash link at seq 12" }, start[1]!])
    expect(broken.statuses.slice(1)).toEqual(["syncing", "failed", "failed"])
    expect(broken.snapshot.context.reason).toBe("replica: broken hash link at seq 12")
  })

  it("hot-swaps: the old block serves until the new one is in; stale or foreign updates change nothing", () => {
    const r = fold([
      ...start,
      { type: "expert.updated", part: "layer9.expert9", block: C },
      { type: "expert.updated", part: "layer0.expert1", block: A },
      { type: "expert.updated", part: "layer0.expert1", block: C },
      { type: "swapped", part: "layer0.expert1", block: B },
      { type: "swapped", part: "layer0.expert1", block: C }
    ])
    expect(r.statuses.slice(3)).toEqual(["serving.steady", "serving.steady", "serving.steady", "serving.swapping", "serving.swapping", "serving.steady"])
    expect(r.snapshot.context.blocks).toEqual({ "layer0.expert1": C, "layer1.expert0": B })
    expect(r.recorded.map((e) => e.data)).toEqual([
      { node: "n1", blocks: [A, B] },
      { node: "n1", blocks: [B, C] }
    ])
  })

  it("an update that arrives while loading is swapped in as soon as serving begins", () => {
    const r = fold([start[0]!, start[1]!, { type: "expert.updated", part: "layer1.expert0", block: C }, start[2]!, { type: "swapped", part: "layer1.expert0", block: C }])
    expect(r.statuses.slice(-2)).toEqual(["serving.swapping", "serving.steady"])
    expect(r.recorded.map((e) => e.data)).toEqual([{ node: "n1", blocks: [A, C] }])
  })

  const anyEvent: fc.Arbitrary<NodeMachineEvent> = fc.oneof(
    fc.constant({ type: "registered", node: "n7" } as const),
    fc.constant({ type: "refused", reason: "unknown API key" } as const),
    fc.nat({ max: 99 }).map((head) => ({ type: "synced", head }) as const),
    fc.dictionary(fc.constantFrom("layer0.expert0", "layer0.expert1", "layer1.expert0"), fc.constantFrom(A, B, C), { minKeys: 1 }).map((blocks) => ({ type: "loaded", blocks }) as const),
    fc.record({ part: fc.constantFrom("layer0.expert0", "layer0.expert1", "layer2.expert2"), block: fc.constantFrom(A, B, C) }).map((u) => ({ type: "expert.updated", ...u }) as const),
    fc.record({ part: fc.constantFrom("layer0.expert0", "layer0.expert1"), block: fc.constantFrom(A, B, C) }).map((u) => ({ type: "swapped", ...u }) as const),
    fc.constant({ type: "failed", reason: "block hash mismatch" } as const),
    fc.constant({ type: "banned", reason: "wrong outputs" } as const),
    fc.constant({ type: "drain" } as const),
    fc.constant({ type: "drained" } as const)
  )

  it("for any sequence of inputs: serving only from loading, registered and synced; final states stay; what is recorded is valid and true (property)", () => {
    fc.assert(
      fc.property(fc.array(anyEvent, { maxLength: 40 }), (events) => {
        let [s] = initialTransition(nodeMachine)
        for (const e of events) {
          const [next] = transition(nodeMachine, s, e)
          if (s.status === "done") expect(next.value).toEqual(s.value)
          if (next.matches("serving") && !s.matches("serving")) {
            // Only from loading, by a load, with a name from registration and a head from the sync.
            expect([nodeStatus(s), e.type]).toEqual(["loading", "loaded"])
            expect(next.context.node).toBe("n7")
            expect(next.context.head).toBeDefined()
          }
          const a = announcement(s, next)
          if (a !== undefined) {
            expect(Either.isRight(prepareEvent(`node-${next.context.node}`, a))).toBe(true)
            if (a.type === "NodeExpertsAnnounced") expect(a.data).toEqual({ node: "n7", blocks: [...new Set(Object.values(next.context.blocks))].sort() })
            else expect([s.value, next.value, e.type]).toEqual(["draining", "stopped", "drained"])
          }
          // Only a load or an awaited swap changes what is served.
          if (JSON.stringify(next.context.blocks) !== JSON.stringify(s.context.blocks)) expect(["loaded", "swapped"]).toContain(e.type)
          s = next
        }
      }),
      { numRuns: 500 }
    )
  })

  it("an actor hosting the machine ends where the fold of the same inputs ends", () => {
    const events: NodeMachineEvent[] = [...start, { type: "expert.updated", part: "layer0.expert1", block: C }, { type: "swapped", part: "layer0.expert1", block: C }, { type: "drain" }]
    const actor = createActor(nodeMachine).start()
    for (const e of events) actor.send(e)
    const hosted: NodeSnapshot = actor.getSnapshot()
    actor.stop()
    const folded = fold(events).snapshot
    expect(hosted.value).toEqual(folded.value)
    expect(hosted.context).toEqual(folded.context)
  })
})
