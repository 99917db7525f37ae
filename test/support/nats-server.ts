import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Scope } from "effect"

/**
 * A nats-server of a test's own, with JetStream, on a free loopback port and a store directory of
 * its own, for tests that must kill and restart the server. Stopped (and its directory removed)
 * when the scope closes.
 */
export type OwnNatsServer = {
  readonly url: string
  readonly port: number
  readonly dir: string
  /** Kill the server with SIGKILL and wait until it is gone. */
  readonly kill9: Effect.Effect<void>
  /** Start it again on the same port and store directory, and wait until it is ready. */
  readonly restart: Effect.Effect<void>
}

const binary = fs.existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server"
const READY_MS = 30_000

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
    srv.on("error", reject)
  })

/** Spawn the server and resolve once it logs that it is ready (or fail, with its log, if it exits first). */
const launch = (port: number, dir: string, args: ReadonlyArray<string>) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(binary, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir, ...args], { stdio: ["ignore", "ignore", "pipe"] })
    let log = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`nats-server on port ${port} not ready within ${READY_MS} ms:\n${log}`))
    }, READY_MS)
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString()
      if (log.includes("Server is ready")) {
        clearTimeout(timer)
        resolve(child)
      }
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`nats-server on port ${port} exited (${code ?? signal}) before it was ready:\n${log}`))
    })
  })

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/** `args`: more options for the server (TLS, …). */
export const ownNatsServer = (args: ReadonlyArray<string> = []): Effect.Effect<OwnNatsServer, never, Scope.Scope> => Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "blyan-nats-"))),
    (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
  )
  const port = yield* Effect.promise(freePort)
  let child = yield* Effect.promise(() => launch(port, dir, args))
  yield* Effect.addFinalizer(() => Effect.promise(() => killed(child)))
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    kill9: Effect.promise(() => killed(child)),
    restart: Effect.promise(async () => {
      child = await launch(port, dir, args)
    })
  }
})
