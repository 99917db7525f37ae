/**
 * The node registry, hosted by the process that holds the store: it answers registrations on
 * `Subjects.nodeRegister` and records `NodeRegistered` in the node's stream; and `registerNode`,
 * a node's side of the exchange. A refusal is answered in words and records nothing.
 */
import { Effect, Either } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { KeysProjection, type KeysState } from "../domain/projections/keys.ts"
import { NodesProjection, type NodesState } from "../domain/projections/nodes.ts"
import type { Projection } from "../domain/projections/projection.ts"
import {
  decideRegistration,
  parseRegistration,
  RegistrationRefused,
  signRegistration,
  type NodeProfile,
  type RegistrationReply
} from "../domain/network/registration.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { handleCommand } from "./command.ts"

/** What a registration is decided on: the API keys and the node registry. */
const RegistryProjection: Projection<{ keys: KeysState; nodes: NodesState }, unknown> = {
  name: "registry",
  initial: () => ({ keys: KeysProjection.initial(), nodes: NodesProjection.initial() }),
  evolve: (s, e) => ({ keys: KeysProjection.evolve(s.keys, e), nodes: NodesProjection.evolve(s.nodes, e) }),
  view: (s) => ({ keys: KeysProjection.view(s.keys), nodes: NodesProjection.view(s.nodes) })
}

const encoder = new TextEncoder()
const reply = (r: RegistrationReply) => encoder.encode(JSON.stringify(r))

/** Answer registrations until the scope closes. */
export const serveRegistry = Effect.gen(function* () {
  const bus = yield* Bus
  const decide = (text: string) =>
    Effect.gen(function* () {
      const req = yield* parseRegistration(text)
      yield* handleCommand({
        stream: Streams.node(req.profile.node),
        projection: RegistryProjection,
        reads: "log",
        decide: (s) => decideRegistration(s.keys, s.nodes, req)
      })
      return reply({ ok: true, node: req.profile.node })
    })
  const context = yield* Effect.context<Effect.Effect.Context<ReturnType<typeof decide>>>()
  yield* bus.serve(Subjects.nodeRegister, (request) =>
    decide(new TextDecoder().decode(request.data)).pipe(
      Effect.catchTag("RegistrationRefused", (e) => Effect.succeed(reply({ ok: false, reason: e.message }))),
      // The node hears why rather than waiting out its deadline.
      Effect.catchAll((e) =>
        Effect.as(Effect.logError("a registration could not be recorded", e), reply({ ok: false, reason: `registration not recorded: ${e.message}` }))
      ),
      Effect.provide(context)
    )
  )
})

/** A node's registration: its profile signed with its key; the registry's refusal as RegistrationRefused. */
export const registerNode = (profile: NodeProfile, apiKey: string, seedHex: string, timeoutMs: number) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const answer = yield* bus.request(Subjects.nodeRegister, encoder.encode(JSON.stringify(signRegistration(profile, apiKey, seedHex))), { timeoutMs })
    let r: RegistrationReply | undefined
    try {
      r = JSON.parse(new TextDecoder().decode(answer)) as RegistrationReply
    } catch {
      r = undefined
    }
    if (r?.ok === true && r.node === profile.node) return r.node
    return yield* Either.left(r?.ok === false && typeof r.reason === "string" ? new RegistrationRefused({ message: r.reason }) : RegistrationRefused.because("the registry's answer is not one"))
  })
