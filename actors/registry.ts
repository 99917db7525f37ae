/**
 * The node registry, hosted by the process that holds the store: it answers registrations on
 * `Subjects.nodeRegister` and records `NodeRegistered` in the node's stream; and `registerNode`,
 * a node's side of the exchange. A refusal is answered in words and records nothing.
 */
import { Clock, Effect } from "effect"
import { Streams } from "../domain/ledger/streams.ts"
import { KeysProjection } from "../domain/projections/keys.ts"
import { NodesProjection } from "../domain/projections/nodes.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import {
  decideRegistration,
  parseRegistration,
  RegistrationRefused,
  signRegistration,
  type NodeProfile
} from "../domain/network/registration.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { handleCommand } from "./command.ts"
import { askOwner, serveOwnerRequests } from "./owner-requests.ts"

/** What a registration is decided on: the API keys and the node registry. */
const RegistryProjection = sideBySide("registry", { keys: KeysProjection, nodes: NodesProjection })

/** Answer registrations until the scope closes. */
export const serveRegistry = serveOwnerRequests(Subjects.nodeRegister, "RegistrationRefused", (text) =>
  Effect.gen(function* () {
    const req = yield* parseRegistration(text)
    const now = yield* Clock.currentTimeMillis
    yield* handleCommand({
      stream: Streams.node(req.profile.node),
      projection: RegistryProjection,
      reads: "log",
      decide: (s) => decideRegistration(s.keys, s.nodes, req, now)
    })
  })
)

/** A node's registration: its profile signed with its key; the registry's refusal as RegistrationRefused. */
export const registerNode = (profile: NodeProfile, apiKey: string, seedHex: string, timeoutMs: number) =>
  askOwner(Subjects.nodeRegister, signRegistration(profile, apiKey, seedHex), timeoutMs, (reason) => new RegistrationRefused({ message: reason }))
