import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { registerNode, serveRegistry } from "../../actors/registry.ts"
import { makeMemoryBus } from "../../adapters/bus/memory.ts"
import { makeMemoryEventStore } from "../../adapters/eventstore/memory.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { EventStore, type EventStoreApi } from "../../domain/ports/event-store.ts"
import { newEvent } from "../../domain/ledger/events.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { derivePublicHex } from "../../domain/ledger/signing.ts"
import { signRegistration, type NodeProfile } from "../../domain/network/registration.ts"
import { Subjects } from "../../domain/network/subjects.ts"
import { genesisEvent } from "../support/events.ts"
import { logOf } from "../support/log.ts"

const seed = () => randomBytes(32).toString("hex")
const profileOf = (node: string, seedHex: string): NodeProfile => ({ node, publicKey: derivePublicHex(seedHex), device: "cpu", memory: 2 ** 30, speed: 812.5 })

/** A ledger with keys of every kind, the registry serving it on a memory bus. */
const network = Effect.gen(function* () {
  const store = yield* makeMemoryEventStore()
  yield* store.append("chain-A", [genesisEvent()], "no_stream")
  const issue = (key: string, role: "node" | "contributor") => newEvent("ApiKeyIssued", { keyHash: sha256Hex(key), role })
  yield* store.append("keys", [issue("node-key", "node"), issue("spare-key", "node"), issue("contrib-key", "contributor")], "any")
  yield* store.append("keys", [newEvent("ApiKeyRevoked", { keyHash: sha256Hex("spare-key") })], "any")
  const bus = yield* makeMemoryBus()
  yield* serveRegistry.pipe(Effect.provideService(Bus, bus), Effect.provideService(EventStore, store))
  const register = (profile: NodeProfile, apiKey: string, seedHex: string) =>
    Effect.either(registerNode(profile, apiKey, seedHex, 3000).pipe(Effect.provideService(Bus, bus)))
  return { store, bus, register }
})

const nodeEvents = (store: EventStoreApi) => Effect.map(logOf(store), (log) => log.filter((e) => e.stream.startsWith("node-")))

describe("node registration over the bus", () => {
  it.scopedLive("a node key and a signed profile register the node: NodeRegistered with the key's hash, never the key", () =>
    Effect.gen(function* () {
      const { store, register } = yield* network
      const s = seed()
      expect(yield* register(profileOf("gpu-1", s), "node-key", s)).toEqual(Either.right(undefined))
      const [e] = yield* nodeEvents(store)
      expect(e).toMatchObject({ stream: "node-gpu-1", type: "NodeRegistered", data: { ...profileOf("gpu-1", s), keyHash: sha256Hex("node-key") } })
      expect(JSON.stringify(yield* logOf(store))).not.toContain('"node-key"')
      // The same node again (a restart) records its profile again; another key may not take its id.
      expect(Either.isRight(yield* register({ ...profileOf("gpu-1", s), speed: 900 }, "node-key", s))).toBe(true)
      const other = seed()
      const taken = yield* register(profileOf("gpu-1", other), "node-key", other)
      expect(Either.isLeft(taken) && taken.left.message).toBe("registration refused: node id gpu-1 belongs to another key")
    })
  )

  it.scopedLive("an unknown, revoked or non-node key, a forged signature or a banned node is refused in words, and nothing is recorded", () =>
    Effect.gen(function* () {
      const { store, register } = yield* network
      const s = seed()
      yield* store.append("node-gpu-9", [newEvent("NodeRegistered", { ...profileOf("gpu-9", s), keyHash: sha256Hex("node-key") })], "no_stream")
      yield* store.append("node-gpu-9", [newEvent("NodeBanned", { node: "gpu-9", reason: "wrong outputs" })], 0)
      const before = yield* logOf(store)
      const cases: ReadonlyArray<readonly [NodeProfile, string, string, string]> = [
        [profileOf("gpu-2", s), "no-such-key", s, "unknown API key"],
        [profileOf("gpu-2", s), "spare-key", s, "the API key is revoked"],
        [profileOf("gpu-2", s), "contrib-key", s, "the API key is for a contributor, not a node"],
        [profileOf("gpu-2", s), "node-key", seed(), "the signature is not the node key's over its profile"],
        [profileOf("gpu-9", s), "node-key", s, "node gpu-9 is banned: wrong outputs"]
      ]
      for (const [profile, key, signer, reason] of cases) {
        const r = yield* register(profile, key, signer)
        expect(Either.isLeft(r) && r.left.message).toBe(`registration refused: ${reason}`)
      }
      expect(yield* logOf(store)).toEqual(before)
    })
  )

  it.scopedLive("a malformed request, or a signed profile altered on the way, is refused; a bad node id never reaches a subject or a stream", () =>
    Effect.gen(function* () {
      const { store, bus } = yield* network
      const before = yield* logOf(store)
      const ask = (body: unknown) =>
        Effect.map(bus.request(Subjects.nodeRegister, new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body)), { timeoutMs: 3000 }), (b) =>
          JSON.parse(new TextDecoder().decode(b))
        )
      expect(yield* ask("not json")).toMatchObject({ ok: false, reason: expect.stringContaining("registration refused: malformed request") })
      const s = seed()
      const signed = signRegistration(profileOf("gpu-3", s), "node-key", s)
      expect(yield* ask({ ...signed, profile: { ...signed.profile, memory: 2 ** 40 } })).toEqual({
        ok: false,
        reason: "registration refused: the signature is not the node key's over its profile"
      })
      const badId = signRegistration(profileOf("a.b", s), "node-key", s)
      expect(yield* ask(badId)).toMatchObject({ ok: false, reason: expect.stringContaining("NodeId") })
      expect(yield* ask({ ...signed, extra: 1 })).toMatchObject({ ok: false, reason: expect.stringContaining("malformed request") })
      expect(yield* logOf(store)).toEqual(before)
    })
  )
})
