/**
 * Distributed inference (run: `npx tsx bench/network.ts`, after `npm run build`), written to
 * bench/results/network.json. On the NATS server at BENCH_NATS (default nats://127.0.0.1:4222):
 * `blyan up --nats` holds a fresh ledger and routes; three `blyan node` processes serve every
 * expert. Measured in the same run, alternately:
 *
 * - tokens/s of a chat answered by the network (the client asks over NATS; every expert of every
 *   token is computed on a node), against the same generation with the model in this process;
 *   both greedy, both must give the same bytes;
 * - failover: one node is killed with SIGKILL while it serves a chat; from the kill, how long until
 *   an expert request goes to another node, and the longest pause between expert requests in that
 *   chat against the longest in an undisturbed one. Expert requests are watched as they pass, by a
 *   plain subscriber to every expert subject.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Fiber, ManagedRuntime, Stream } from "effect"
import { askChat } from "../actors/chat-service.ts"
import { makeNatsBus } from "../adapters/bus/nats.ts"
import { ModelRunnerOnnx } from "../adapters/executor/model-runner.ts"
import { Bus } from "../domain/ports/bus.ts"
import { ModelRunner } from "../domain/ports/model-runner.ts"
import { textBytes } from "../domain/model/data.ts"
import { initWeights } from "../domain/model/init.ts"
import { defaultSpec } from "../domain/model/spec.ts"
import { killWhenServing } from "../test/support/kill-when-serving.ts"
import { benchProcesses, sleep } from "./processes.ts"
import { machineInfo, writeResults } from "./record.ts"

const NATS = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222"
const TOKENS = Number(process.env.BENCH_GEN_TOKENS ?? 48)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const { root, children, blyan, start, nodesServing, stopAll } = benchProcesses("network", { BLYAN_HEARTBEAT_MS: "100", BLYAN_SPOTCHECK_RATE: "0" })

/** The node an expert request is addressed to (`Subjects.expertsOn`), or "" for a queue group's. */
const addressedTo = (subject: string) => {
  const t = subject.split(".")
  return t[3] === "on" ? t[4]! : ""
}
const ECHO_SUBJECT = "bench.network.echo"
const ECHO = `import { connect } from "nats"
const nc = await connect({ servers: ${JSON.stringify(NATS)} })
nc.subscribe(${JSON.stringify(ECHO_SUBJECT)}, { callback: (err, m) => err || m.respond(m.data) })
await nc.flush()
process.stdout.write("ready\\n")`
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

const prompt = "Every expert is a block on the ledger.".slice(0, 16)
const request = { prompt, maxTokens: TOKENS, temperature: 0, seed: 1 }
const rt = ManagedRuntime.make(ModelRunnerOnnx({ device: "cpu" }))

try {
  const data = path.join(root, "ledger")
  blyan(["init", "--data", data])
  const { key } = JSON.parse(blyan(["keys", "create", "--role", "node", "--json", "--data", data])) as { key: string }
  start(["up", "--data", data, "--nats", NATS, "--train-steps", "0"])
  await sleep(1500)
  const nodes = ["b1", "b2", "b3"].map((id) => ({ id, child: start(["node", "--nats", NATS, "--api-key", key, "--data", path.join(root, id), "--node-id", id]) }))
  await nodesServing(data, 3)

  const runner = await rt.runPromise(ModelRunner)
  const weights = initWeights(defaultSpec)
  const local = async () => {
    const t0 = performance.now()
    const r = await rt.runPromise(runner.generate(weights, textBytes(prompt), { ...request }))
    return { perSec: r.tokens.length / ((performance.now() - t0) / 1000), text: Buffer.from(r.tokens).toString("hex") }
  }

  const program = Effect.gen(function* () {
    const bus = yield* makeNatsBus([NATS])
    // Every expert request as it passes: when, and to whom.
    const seen: Array<{ readonly at: number; readonly node: string }> = []
    const watched = yield* bus.subscribe("blyan.expert.>")
    yield* Effect.forkScoped(Stream.runForEach(watched, (m) => Effect.sync(() => seen.push({ at: performance.now(), node: addressedTo(m.subject) }))))
    const distributed = Effect.gen(function* () {
      const t0 = performance.now()
      const answer = yield* askChat(request, 120_000).pipe(Effect.provideService(Bus, bus))
      return { perSec: answer.tokens.length / ((performance.now() - t0) / 1000), text: Buffer.from(answer.tokens).toString("hex"), t0, t1: performance.now() }
    })
    yield* Effect.promise(local)
    yield* distributed
    const net: number[] = []
    const here: number[] = []
    const pauses: number[] = []
    const requests: number[] = []
    for (let r = 0; r < REPEATS; r++) {
      const a = yield* Effect.promise(local)
      const b = yield* distributed
      if (a.text !== b.text) return yield* Effect.die(new Error("distributed generation gave other bytes than local generation"))
      here.push(a.perSec)
      net.push(b.perSec)
      const during = seen.filter((s) => s.at >= b.t0 && s.at <= b.t1)
      pauses.push(Math.max(...during.slice(1).map((s, i) => s.at - during[i]!.at)))
      requests.push(during.length / TOKENS)
    }
    // The bus's own round trip, for scale: a request the size of a layer's (two experts' rows) to a process that only echoes it.
    const echo = spawn(process.execPath, ["--input-type=module", "-e", ECHO], { stdio: ["ignore", "pipe", "inherit"] })
    children.push(echo)
    yield* Effect.promise(() => new Promise((ready) => echo.stdout!.once("data", ready)))
    const trips: number[] = []
    const layerRequest = new Uint8Array(2 * defaultSpec.dModel * 4 + 300)
    for (let i = 0; i < 600; i++) {
      const t0 = performance.now()
      yield* bus.request(ECHO_SUBJECT, layerRequest, { timeoutMs: 5000 })
      if (i >= 100) trips.push(performance.now() - t0)
    }
    echo.kill("SIGTERM")
    // Failover: b2 dies as soon as its heartbeat shows it serving the chat.
    const victim = nodes[1]!
    const killer = yield* Effect.fork(killWhenServing(bus, victim.id, () => victim.child.kill("SIGKILL")))
    const disturbed = yield* distributed
    const killedAt = yield* Fiber.join(killer)
    if (disturbed.text !== (yield* Effect.promise(local)).text) return yield* Effect.die(new Error("the chat with a node killed gave other bytes"))
    const after = seen.filter((s) => s.at >= killedAt && s.at <= disturbed.t1)
    const firstElsewhere = after.find((s) => s.node !== victim.id)
    const during = seen.filter((s) => s.at >= disturbed.t0 && s.at <= disturbed.t1)
    return {
      localTokensPerSec: round(median(here)),
      distributedTokensPerSec: round(median(net)),
      ratio: round(median(net) / median(here), 2),
      msPerToken: { local: round(1000 / median(here), 2), distributed: round(1000 / median(net), 2) },
      expertRequestsPerToken: round(median(requests), 2),
      busRoundTripMs: round(median(trips), 3),
      failover: {
        killedAfterMs: round(killedAt - disturbed.t0),
        firstRequestToAnotherNodeMs: firstElsewhere === undefined ? null : round(firstElsewhere.at - killedAt, 2),
        requestsToTheDeadNodeAfterKill: after.filter((s) => s.node === victim.id).length,
        longestPauseMs: round(Math.max(...during.slice(1).map((s, i) => s.at - during[i]!.at)), 2),
        longestPauseUndisturbedMs: round(median(pauses), 2),
        disturbedTokensPerSec: round(disturbed.perSec)
      }
    }
  })
  const result = await Effect.runPromise(Effect.scoped(program))
  console.log(
    `distributed chat over NATS (3 node processes): ${result.distributedTokensPerSec} tokens/s, local ${result.localTokensPerSec} tokens/s: ${result.ratio}x; ` +
      `${result.expertRequestsPerToken} expert requests per token, the bus's round trip ${result.busRoundTripMs} ms; ` +
      `failover: first request to another node ${result.failover.firstRequestToAnotherNodeMs} ms after the kill, longest pause ${result.failover.longestPauseMs} ms (undisturbed ${result.failover.longestPauseUndisturbedMs} ms)`
  )
  writeResults("network", {
    bench: "network",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `medians of ${REPEATS} alternating runs; greedy, batch 1, ${TOKENS} new bytes after a ${prompt.length}-byte prompt, genesis weights of ${defaultSpec.name}; router in blyan up, three blyan node processes, NATS on loopback; both gave the same bytes`,
    ...result
  })
} finally {
  await stopAll()
  await rt.dispose()
  fs.rmSync(root, { recursive: true, force: true })
}
