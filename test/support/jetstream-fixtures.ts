import { randomBytes } from "node:crypto"
import { Effect, type Scope } from "effect"
import { connectJetStream, type JetStreamConnection } from "../../adapters/eventstore/jetstream-connection.ts"

/** The NATS server the JetStream tests use: BLYAN_TEST_NATS_URL, else the local default. */
export const testNatsUrl = process.env.BLYAN_TEST_NATS_URL ?? "nats://127.0.0.1:4222"

/** A name no other test uses, valid for a JetStream stream or an object store bucket. */
export const uniqueName = (prefix: string) => `${prefix}_${randomBytes(6).toString("hex")}`

/** A connection for the scope. */
export const testConnection = (url = testNatsUrl): Effect.Effect<JetStreamConnection, unknown, Scope.Scope> => connectJetStream([url])

/** Delete a JetStream stream when the scope closes (after whatever was opened on it later). */
export const deleteStreamAfter = (conn: JetStreamConnection, stream: string) =>
  Effect.addFinalizer(() => Effect.promise(() => conn.jsm.streams.delete(stream).catch(() => false)))
