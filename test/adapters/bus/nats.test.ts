import { makeNatsBus } from "../../../adapters/bus/nats.ts"
import { busContract } from "../../contract/bus.ts"
import { testNatsUrl } from "../../support/jetstream-fixtures.ts"
import { Effect } from "effect"

// Each client is a connection of its own to the real server.
busContract("nats", () => Effect.succeed({ client: makeNatsBus([testNatsUrl]) }))
