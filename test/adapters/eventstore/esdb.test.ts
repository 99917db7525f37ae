import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { eventIdOf, makeEsdbEventStore, toEsdbRevision } from "../../../adapters/eventstore/esdb.ts"
import { eventStoreContract } from "../../contract/event-store.ts"

const url = process.env.BLYAN_EVENTSTORE_URL

/**
 * Against a real EventStoreDB only (BLYAN_EVENTSTORE_URL=esdb://...). Our log is global, so each
 * store gets a fresh stream-name prefix: the database may hold anything else, and every store in
 * the suite starts from an empty log of its own.
 */
describe.skipIf(!url)("esdb adapter against a server", () => {
  eventStoreContract("esdb", () => makeEsdbEventStore(url!, { prefix: `t${randomBytes(6).toString("hex")}-` }))
})

describe("esdb adapter: mappings", () => {
  it("maps expected revisions onto the client's", () => {
    expect(toEsdbRevision("any")).toBe("any")
    expect(toEsdbRevision("no_stream")).toBe("no_stream")
    expect(toEsdbRevision("stream_exists")).toBe("stream_exists")
    expect(toEsdbRevision(7)).toBe(7n)
  })

  it("derives a stable, well-formed UUID event id from an envelope hash", () => {
    const h = "9acd1857454b356184af425b08ca074c3c63b585eb7802c5d247d6a122e5c09d"
    const id = eventIdOf(h)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(eventIdOf(h)).toBe(id)
    expect(eventIdOf("0" + h.slice(1))).not.toBe(id)
  })
})

describe("esdb adapter: without a server", () => {
  // A real connection attempt, bounded by the client's own deadlines: on the live clock.
  it.scopedLive("an unreachable server refuses the open with a StoreFailure, not a hang", () =>
    Effect.gen(function* () {
      // A port that was just free: nothing listens there.
      const port = yield* Effect.async<number>((resume) => {
        const srv = net.createServer().listen(0, "127.0.0.1", () => {
          const p = (srv.address() as net.AddressInfo).port
          srv.close(() => resume(Effect.succeed(p)))
        })
      })
      const err = yield* Effect.flip(makeEsdbEventStore(`esdb://127.0.0.1:${port}?tls=false`))
      expect(err._tag).toBe("StoreFailure")
      expect(err.message).toContain("cannot read $all")
    })
  )

  it.scoped("a malformed connection string is a StoreFailure", () =>
    Effect.gen(function* () {
      const err = yield* Effect.flip(makeEsdbEventStore("http://not-esdb"))
      expect(err._tag).toBe("StoreFailure")
    })
  )
})
