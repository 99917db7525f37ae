import { makeMemoryEventStore } from "../../../adapters/eventstore/memory.ts"
import { eventStoreContract } from "../../contract/event-store.ts"
import { replicaContract } from "../../contract/replica.ts"

eventStoreContract("memory", () => makeMemoryEventStore())
replicaContract("memory", () => makeMemoryEventStore())
