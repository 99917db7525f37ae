import { describe, expect, it } from "vitest"
import { PlansProjection, decideFreeze, decidePromote, planForRound } from "../../../domain/projections/plans.ts"
import { newEvent, type NewEvent } from "../../../domain/ledger/events.ts"
import { genesisEnvelope } from "../../../domain/ledger/genesis.ts"
import { derivedPlanId, type Plan } from "../../../domain/pipeline/plan.ts"
import { DeciderSpec } from "../../support/decider-spec.ts"

const envelopeOf = (e: NewEvent, seq: number) => ({ ...genesisEnvelope(), seq, type: e.type, data: e.data })
let seq = 1
const evolve = (s: ReturnType<typeof PlansProjection.initial>, e: NewEvent) =>
  PlansProjection.evolve(s, { type: e.type, data: e.data, envelope: envelopeOf(e, seq++) } as never)
const spec = DeciderSpec(PlansProjection.initial, evolve)

const plan = (planId: string, round = "round_0", epoch = "E1"): Plan => ({
  planId,
  epoch,
  round,
  stages: [{ node: "n1", start: 0, end: 1 }, { node: "n2", start: 2, end: 3 }],
  zero1: false,
  actCkpt: false
})
const p1 = plan("p1")
const planned = (p: Plan) => newEvent("EpochPlanned", { plan: p })
const promoted = (p: Plan) => newEvent("PlanPromoted", { planId: p.planId, epoch: p.epoch, round: p.round })
const frozen = (p: Plan) => newEvent("PlanFrozen", { planId: p.planId, epoch: p.epoch, round: p.round })

describe("plans (given recorded plans, when promoting, then events)", () => {
  it("records a new plan and its promotion together", () => {
    spec.given([]).when((s) => decidePromote(s, p1)).then([planned(p1), promoted(p1)])
  })

  it("promotes a plan that was only drafted without recording it again", () => {
    spec.given([planned(p1)]).when((s) => decidePromote(s, p1)).then([promoted(p1)])
  })

  it("refuses a second promotion, another plan under a taken id, and a second plan for a round", () => {
    spec.given([planned(p1), promoted(p1)]).when((s) => decidePromote(s, p1)).thenFails("PlanRefused", /already promoted/)
    spec.given([planned(p1)]).when((s) => decidePromote(s, { ...p1, zero1: true })).thenFails("PlanRefused", /different plan/)
    spec.given([planned(p1), promoted(p1)]).when((s) => decidePromote(s, plan("p2"))).thenFails("PlanRefused", /round_0 of epoch E1 already runs under plan p1/)
  })

  it("lets other rounds and epochs have their own plans; a draft does not take a round", () => {
    spec.given([planned(p1), promoted(p1)]).when((s) => decidePromote(s, plan("p2", "round_1"))).then([planned(plan("p2", "round_1")), promoted(plan("p2", "round_1"))])
    spec.given([planned(p1), promoted(p1)]).when((s) => decidePromote(s, plan("p3", "round_0", "E2"))).then([planned(plan("p3", "round_0", "E2")), promoted(plan("p3", "round_0", "E2"))])
    spec.given([planned(p1)]).when((s) => decidePromote(s, plan("p2"))).then([planned(plan("p2")), promoted(plan("p2"))])
  })

  it("freezes once, knowing it from chain A alone", () => {
    spec.given([]).when((s) => decideFreeze(s, p1)).then([frozen(p1)])
    spec.given([frozen(p1)]).when((s) => decideFreeze(s, p1)).thenFails("PlanRefused", /already frozen/)
  })

  it("tracks status from planned to promoted to frozen", () => {
    const s = [planned(p1), promoted(p1), frozen(p1)].reduce(evolve, PlansProjection.initial())
    expect(s.plans.get("p1")?.status).toBe("frozen")
    expect(planForRound(s, "E1", "round_0")?.plan).toEqual(p1)
    expect(planForRound(s, "E1", "round_1")).toBeUndefined()
  })
})

describe("plan ids (given recorded plans, when promoting a plan whose id it may not carry, then refused)", () => {
  const genuine = plan(derivedPlanId(plan("unused")))
  const tampered: Plan = { ...genuine, stages: [{ node: "evil", start: 0, end: 3 }] }

  it("refuses an id a terminal would interpret, before anything is recorded", () => {
    spec.given([]).when((s) => decidePromote(s, plan("p1\n\u001b[31m"))).thenFails("PlanRefused", /^plan id "p1\\n\\u001b\[31m" must start/)
  })

  it("refuses a tampered plan under the genuine plan's content-derived id; the genuine plan then still promotes", () => {
    spec.given([]).when((s) => decidePromote(s, tampered)).thenFails("PlanRefused", /has the content-derived form but this content derives plan-[0-9a-f]{12}/)
    spec.given([]).when((s) => decidePromote(s, genuine)).then([planned(genuine), promoted(genuine)])
  })
})
