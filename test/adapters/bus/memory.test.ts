import { Effect } from "effect"
import { makeMemoryBus } from "../../../adapters/bus/memory.ts"
import { busContract } from "../../contract/bus.ts"

// One bus is the whole network: every client is that bus.
busContract("memory", () => Effect.map(makeMemoryBus(), (bus) => ({ client: Effect.succeed(bus) })))
