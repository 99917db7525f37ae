import * as fs from "node:fs"
import { Either } from "effect"
import type { ConnectionOptions, TlsOptions } from "nats"

/**
 * TLS for NATS from the environment: `BLYAN_TLS_CERT` is the certificate (or CA) to trust for the
 * server; `BLYAN_TLS_CLIENT_CERT` and `BLYAN_TLS_CLIENT_KEY` (both or neither) are this process's
 * identity for mutual TLS. None set: plain TCP, as a loopback server needs; any set: TLS required.
 * Left: why the settings cannot be used.
 */
export const natsTlsFromEnv = (env: NodeJS.ProcessEnv = process.env): Either.Either<TlsOptions | undefined, string> => {
  const caFile = env.BLYAN_TLS_CERT || undefined
  const certFile = env.BLYAN_TLS_CLIENT_CERT || undefined
  const keyFile = env.BLYAN_TLS_CLIENT_KEY || undefined
  if ((certFile === undefined) !== (keyFile === undefined))
    return Either.left("BLYAN_TLS_CLIENT_CERT and BLYAN_TLS_CLIENT_KEY go together: set both for mutual TLS, or neither")
  for (const [name, file] of [["BLYAN_TLS_CERT", caFile], ["BLYAN_TLS_CLIENT_CERT", certFile], ["BLYAN_TLS_CLIENT_KEY", keyFile]] as const)
    if (file !== undefined && !fs.existsSync(file)) return Either.left(`${name}: no file at ${file}`)
  if (caFile === undefined && certFile === undefined) return Either.right(undefined)
  return Either.right({ ...(caFile ? { caFile } : {}), ...(certFile ? { certFile, keyFile } : {}) })
}

/**
 * How every Blyan process connects to NATS (the bus and the JetStream store alike): reconnecting
 * forever (a restarted or failed-over server is found again; each request has its own deadline),
 * with TLS from the environment. Left: why the TLS settings cannot be used.
 */
export const natsConnectOptions = (servers: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Either.Either<ConnectionOptions, string> =>
  Either.map(natsTlsFromEnv(env), (tls) => ({
    servers: [...servers],
    name: "blyan",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    noAsyncTraces: true,
    ...(tls ? { tls } : {})
  }))
