import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { makeNatsBus } from "../../../adapters/bus/nats.ts"
import { ownNatsServer } from "../../support/nats-server.ts"

/** A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA, made with openssl. */
const certs = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-tls-"))
  const f = (name: string) => path.join(dir, name)
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" })
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=blyan-test-ca", "-keyout", f("ca-key.pem"), "-out", f("ca.pem"))
  fs.writeFileSync(f("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
  fs.writeFileSync(f("client.ext"), "extendedKeyUsage=clientAuth\n")
  for (const who of ["server", "client"]) {
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=blyan-test-${who}`, "-keyout", f(`${who}-key.pem`), "-out", f(`${who}.csr`))
    openssl("x509", "-req", "-in", f(`${who}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca-key.pem"), "-CAcreateserial", "-days", "2", "-extfile", f(`${who}.ext`), "-out", f(`${who}.pem`))
  }
  return { dir, ca: f("ca.pem"), serverCert: f("server.pem"), serverKey: f("server-key.pem"), clientCert: f("client.pem"), clientKey: f("client-key.pem") }
})()
afterAll(() => fs.rmSync(certs.dir, { recursive: true, force: true }))

const serverTls = ["--tls", "--tlscert", certs.serverCert, "--tlskey", certs.serverKey, "--tlscacert", certs.ca]
const text = (b: Uint8Array) => new TextDecoder().decode(b)

/** A request answered across one connection of the bus (so both its directions went through TLS). */
const roundTrip = (url: string, env: NodeJS.ProcessEnv) =>
  Effect.scoped(
    Effect.gen(function* () {
      const bus = yield* makeNatsBus([url], env)
      yield* bus.serve("blyan.test.tls", (m) => Effect.succeed(m.data))
      return text(yield* bus.request("blyan.test.tls", new TextEncoder().encode("over tls"), { timeoutMs: 2000 }))
    })
  )

describe("the NATS bus over TLS, from BLYAN_TLS_*", () => {
  it.scopedLive("trusts the server by BLYAN_TLS_CERT; a client without TLS settings cannot connect", () =>
    Effect.gen(function* () {
      const server = yield* ownNatsServer(serverTls)
      expect(yield* roundTrip(server.url, { BLYAN_TLS_CERT: certs.ca })).toBe("over tls")
      const plain = yield* Effect.flip(roundTrip(server.url, {}))
      expect(plain._tag).toBe("BusFailure")
    })
  )

  it.scopedLive("with mutual TLS, connects with BLYAN_TLS_CLIENT_CERT and BLYAN_TLS_CLIENT_KEY and is refused without them", () =>
    Effect.gen(function* () {
      const server = yield* ownNatsServer([...serverTls, "--tlsverify"])
      const mutual = { BLYAN_TLS_CERT: certs.ca, BLYAN_TLS_CLIENT_CERT: certs.clientCert, BLYAN_TLS_CLIENT_KEY: certs.clientKey }
      expect(yield* roundTrip(server.url, mutual)).toBe("over tls")
      const noIdentity = yield* Effect.flip(roundTrip(server.url, { BLYAN_TLS_CERT: certs.ca }))
      expect(noIdentity._tag).toBe("BusFailure")
    })
  )

  it.effect("refuses half a client identity or a missing file before connecting, naming the setting", () =>
    Effect.gen(function* () {
      const half = yield* Effect.flip(Effect.scoped(makeNatsBus(["127.0.0.1:1"], { BLYAN_TLS_CLIENT_CERT: certs.clientCert })))
      expect(half.message).toMatch(/BLYAN_TLS_CLIENT_CERT and BLYAN_TLS_CLIENT_KEY go together/)
      const missing = yield* Effect.flip(Effect.scoped(makeNatsBus(["127.0.0.1:1"], { BLYAN_TLS_CERT: path.join(certs.dir, "nope.pem") })))
      expect(missing.message).toMatch(/BLYAN_TLS_CERT: no file at .*nope\.pem/)
    })
  )
})
