import { makeMemoryEventStore } from "../../../adapters/eventstore/memory.ts"
import { eventStoreContract } from "../../contract/event-store.ts"

eventStoreContract("memory", () => makeMemoryEventStore())
