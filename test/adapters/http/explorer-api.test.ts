import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { FetchHttpClient, HttpApiClient } from "@effect/platform"
import { Effect, Layer, Schedule } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { registerContributor } from "../../../actors/contributors.ts"
import { handleCommand } from "../../../actors/command.ts"
import { Streams } from "../../../domain/ledger/streams.ts"
import { KeysProjection, decideIssueKey } from "../../../domain/projections/keys.ts"
import { initLedger } from "../../../actors/genesis.ts"
import { loadModel, signParts } from "../../../actors/model-ledger.ts"
import { foldStream } from "../../../actors/command.ts"
import { serveBlobs } from "../../../actors/blob-exchange.ts"
import { serveLog } from "../../../actors/log-server.ts"
import { makeRoundDesk, serveRounds } from "../../../actors/round-service.ts"
import { runValidator } from "../../../actors/validator.ts"
import { serveChat, type RouterSettings } from "../../../actors/chat-service.ts"
import { runNode } from "../../../actors/node-agent.ts"
import { chat as localChat } from "../../../actors/chat.ts"
import { serveAnnouncements } from "../../../actors/node-admission.ts"
import { serveRegistry } from "../../../actors/registry.ts"
import { makeMemoryBlobStore } from "../../../adapters/blobs/memory.ts"
import { makeMemoryBus } from "../../../adapters/bus/memory.ts"
import { makeMemoryEventStore } from "../../../adapters/eventstore/memory.ts"
import { Bus } from "../../../domain/ports/bus.ts"
import { encodePart } from "../../../domain/model/safetensors.ts"
import { Subjects } from "../../../domain/network/subjects.ts"
import { ModelProjection } from "../../../domain/projections/model.ts"
import { trainPart } from "../../../actors/pol-evaluation.ts"
import { startProjector } from "../../../actors/projector.ts"
import { runLocalRound } from "../../../actors/round-coordinator.ts"
import { ExplorerApi } from "../../../adapters/http/explorer-api.ts"
import { Explorer, explorerOf, serveExplorer } from "../../../adapters/http/explorer-server.ts"
import { followStepReports, reportStep } from "../../../actors/pipeline-reports.ts"
import { noTransport } from "../../../domain/pipeline/step-report.ts"
import { ModelRunnerLive } from "../../../adapters/executor/model-runner.ts"
import { BlobStore } from "../../../domain/ports/blob-store.ts"
import { EventStore } from "../../../domain/ports/event-store.ts"
import { replay } from "../../../domain/ledger/audit.ts"
import { GENESIS_HASH } from "../../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../../domain/ledger/signing.ts"
import { defaultPoLSettings } from "../../../domain/pol/evaluation.ts"
import { balanceView, chainPage, expertHistory, modelView, nodesView, roundsView, roundView } from "../../../domain/projections/explorer.ts"
import { TestExecutor, tinySpec } from "../../domain/model/support.ts"
import { contributorSeed, testLedgerKey, testTrust } from "../../support/ledger.ts"
import { logOf } from "../../support/log.ts"
import { freshLedger } from "../../support/stores.ts"

const corpus = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/heldout.txt")))
const contributor = keyPairFromSeed(contributorSeed(1))
const validators = [1, 2, 3].map((i) => keyPairFromSeed(sha256Hex(`explorer validator ${i}`)))
const Runtime = Layer.provideMerge(ModelRunnerLive, TestExecutor)
const ROUTER: RouterSettings = { timeoutMs: 5000, attempts: 4, spotCheckRate: 0, staleMs: 5000, banAfter: 3, banMs: 60_000, seed: 1 }
const NODE = "explorer-node"
const CONTRIBUTOR_API_KEY = "bly_contributor_explorer"
const NODE_API_KEY = "bly_node_explorer"
const VALIDATOR_API_KEY = "bly_validator_explorer"

const issueKey = (key: string, role: "contributor" | "node" | "validator") =>
  handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, sha256Hex(key), role) })

/**
 * A tiny ledger where one improvement went through a round, served by the explorer on a free port,
 * with the network's router answering its chat; with `node`, a node agent serving every expert
 * (registered and announced before this returns).
 */
const serve = (options: { readonly node: boolean }) => Effect.gen(function* () {
  const { events, blobs } = yield* freshLedger()
  const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
  yield* on(initLedger(tinySpec))
  yield* on(registerContributor(contributor.publicKey, testLedgerKey))
  const { weights } = yield* on(loadModel)
  const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
  const report = yield* on(runLocalRound({ candidate, contributorSeed: contributor.seed, validators, ledgerKey: testLedgerKey, heldOut, settings: defaultPoLSettings }))
  yield* on(issueKey(CONTRIBUTOR_API_KEY, "contributor"))
  yield* on(issueKey(NODE_API_KEY, "node"))
  yield* on(issueKey(VALIDATOR_API_KEY, "validator"))
  // The network a contribution over HTTP is decided on: the log and blobs on a bus, the desk, one validator.
  const bus = yield* makeMemoryBus()
  const onBus = <A, E, R>(eff: Effect.Effect<A, E, R>) => on(eff).pipe(Effect.provideService(Bus, bus))
  const desk = yield* onBus(makeRoundDesk({ ledgerKey: testLedgerKey, settings: defaultPoLSettings, deadlineMs: 20_000, timeoutMs: 5000, staleMs: 60_000 }))
  yield* onBus(Effect.all([serveLog, serveBlobs, serveRounds(desk, 5000)]))
  const validator = { key: keyPairFromSeed(sha256Hex("explorer's network validator")), apiKey: VALIDATOR_API_KEY, heldOut, timeoutMs: 5000, heartbeatMs: 500, onStatus: () => undefined }
  yield* Effect.forkScoped(runValidator(validator, yield* makeMemoryEventStore()).pipe(Effect.provideService(Bus, bus), Effect.provideService(BlobStore, yield* makeMemoryBlobStore())))
  yield* Effect.retry(bus.request(Subjects.validatorEvaluate(validator.key.publicKey), new TextEncoder().encode("{}"), { timeoutMs: 200 }), Schedule.spaced("50 millis"))
  const projector = yield* on(startProjector)
  const router = yield* onBus(Effect.zipRight(Effect.all([serveRegistry, serveAnnouncements(5000)]), serveChat(ROUTER, projector)))
  if (options.node) {
    const node = { node: NODE, apiKey: NODE_API_KEY, seed: sha256Hex("explorer's node"), device: "cpu", memory: 1 << 30, models: "latest" as const, experts: "all" as const, timeoutMs: 5000, heartbeatMs: 100, watchMs: 100, onStatus: () => undefined }
    yield* Effect.forkScoped(runNode(node, yield* makeMemoryEventStore()).pipe(Effect.provideService(Bus, bus), Effect.provideService(BlobStore, yield* makeMemoryBlobStore())))
    yield* Effect.repeat(logOf(events), { until: (log) => log.some((e) => e.type === "NodeExpertsAnnounced"), schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo("60 seconds")) })
  }
  const head = yield* events.head
  yield* projector.awaitSeq(head!.seq)
  const service = explorerOf(projector, events, blobs, { contribute: desk.decide, chat: router.answer })
  yield* onBus(followStepReports(service.metrics.observeStep))
  const url = yield* serveExplorer({ host: "127.0.0.1", port: 0, page: path.resolve("dist/web") }).pipe(Effect.provideService(Explorer, service))
  const client = yield* HttpApiClient.make(ExplorerApi, { baseUrl: url }).pipe(Effect.provide(FetchHttpClient.layer))
  const log = yield* logOf(events)
  return { url, client, log, report, events, blobs, on, onBus }
})
const served = serve({ node: false })

type Sse<A = { readonly seq: number; readonly type: string }> = { readonly event: string; readonly id: number | undefined; readonly data: A }

/**
 * Open `url` (with `init`: a POST) as server-sent events: once its headers are in (the server has
 * taken the request), `read(enough)` collects events, each with its name, id and data, until
 * `enough` says so or the stream ends.
 */
const openSse = <A = Sse["data"]>(url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    const read = async (enough: (events: ReadonlyArray<Sse<A>>) => boolean) => {
      const events: Sse<A>[] = []
      let buffer = ""
      while (!enough(events)) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const lines = buffer.slice(0, end).split("\n")
          buffer = buffer.slice(end + 2)
          // A comment (a line starting with a colon) is no event.
          if (lines.every((l) => l.startsWith(":"))) continue
          const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2)
          const id = field("id")
          events.push({ event: field("event") ?? "message", id: id === undefined ? undefined : Number(id), data: JSON.parse(field("data")!) })
        }
      }
      await reader.cancel()
      return events
    }
    return { status: response.status, contentType: response.headers.get("content-type"), read: (enough: (events: ReadonlyArray<Sse<A>>) => boolean) => Effect.promise(() => read(enough)) }
  })

type ChatEvent = {
  readonly index: number
  readonly token: number
  readonly experts: ReadonlyArray<{ readonly layer: number; readonly expert: number; readonly block: string; readonly node?: string; readonly request?: string }>
  readonly request: string
  readonly message: string
}

const post = (url: string, body: string, key?: string) =>
  Effect.promise(() =>
    fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) } }).then(async (r) => ({
      status: r.status,
      text: await r.text()
    }))
  )

/** The status of a POST whose answer may come before its body is sent, or "reset" when the server closed the connection on it. */
const postedStatus = (url: string, body: string, key: string) =>
  Effect.async<number | "reset">((resume) => {
    const req = http.request(url, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume()
      resume(Effect.succeed(res.statusCode ?? 0))
    })
    req.on("error", () => resume(Effect.succeed("reset")))
    req.end(body)
  })

const get = (url: string) => Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, text: await r.text() })))

const promtool = (text: string) => {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  return { code: r.status, output: `${r.stdout}${r.stderr}`, error: r.error }
}

describe("the explorer's HTTP API", () => {
  it.scopedLive(
    "every read route answers from the live read models, each view equal to the same view of a fresh replay from seq 0",
    () =>
      Effect.gen(function* () {
        const { client, log, report } = yield* served
        const fresh = replay(log, testTrust)
        expect(fresh.firstBad).toBeUndefined()
        const s = fresh.state
        const health = yield* client.system.health()
        expect(health).toMatchObject({ ok: true, head: { seq: log.length - 1, hash: log.at(-1)!.hash }, projected: log.length - 1 })
        expect((yield* client.ledger.genesis()).hash).toBe(GENESIS_HASH)
        expect(yield* client.ledger.model()).toEqual(modelView(s))
        expect((yield* client.ledger.model()).parts.find((p) => p.name === "layer1.expert0")?.block).toBe(report.block)
        for (const chain of ["A", "B"] as const) {
          // Paged through: every item once, in append order, as the replay has them.
          const items: unknown[] = []
          let cursor: number | null = 0
          while (cursor !== null) {
            const page: { next: number | null; items: ReadonlyArray<unknown> } = yield* client.ledger.chain({ path: { chain }, urlParams: { cursor, limit: 7 } })
            items.push(...page.items)
            cursor = page.next
          }
          expect(items).toEqual(chainPage(s, chain, 0, 10_000).items)
        }
        expect(yield* client.ledger.block({ path: { hash: report.block } })).toEqual(s.chain.blocks.get(report.block))
        // The payload: the bytes the block's hash commits to.
        expect(sha256Hex(yield* client.ledger.payload({ path: { hash: report.block } }))).toBe(s.chain.blocks.get(report.block)!.payload)
        expect(yield* client.ledger.expertHistory({ path: { name: "layer1.expert0" } })).toEqual(expertHistory(s, "layer1.expert0"))
        const page = yield* client.ledger.events({ urlParams: { from: 3, limit: 5 } })
        expect(page).toEqual({ from: 3, next: 8, events: log.slice(3, 8) })
        expect(yield* client.network.nodes()).toEqual(nodesView(s))
        expect(yield* client.network.rounds()).toEqual(roundsView(s))
        const round = yield* client.network.round({ path: { id: report.round } })
        expect(round).toEqual(roundView(s, report.round))
        expect(round.contributions[0]).toMatchObject({ outcome: "accepted", block: report.block })
        expect(yield* client.network.balance({ path: { addr: contributor.publicKey } })).toEqual(balanceView(s, contributor.publicKey))
        expect((yield* client.network.balance({ path: { addr: contributor.publicKey } })).units).toBe(report.reward)
        expect(yield* client.network.plans()).toEqual([])
      }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "POST /api/contributions: with a contributor's key, a round of the network's validators decides it and the report comes back; no key or an unknown one is 401, another role's 403, bad JSON 400, an oversized body refused unread, a stale base 422; none of these changes anything",
    () =>
      Effect.gen(function* () {
        const { url, events, blobs, on } = yield* served
        const { weights } = yield* on(loadModel)
        const { state } = yield* on(foldStream("*", ModelProjection))
        const candidate = yield* trainPart(weights, "layer0.expert1", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 2 })
        const signed = (base: string) => Effect.map(signParts([candidate], () => [base], contributor.seed).pipe(Effect.provideService(BlobStore, blobs)), ([b]) => b!)
        const body = (block: unknown) => JSON.stringify({ block, weights: Buffer.from(encodePart(candidate)).toString("base64") })
        const good = body(yield* signed(state.current.get("layer0.expert1")!.block))
        const at = `${url}/api/contributions`
        const head = yield* events.head
        expect((yield* post(at, good)).status).toBe(401)
        expect((yield* post(at, good, "bly_nobody")).status).toBe(401)
        expect((yield* post(at, good, NODE_API_KEY)).status).toBe(403)
        expect((yield* post(at, "{not json", CONTRIBUTOR_API_KEY)).status).toBe(400)
        expect((yield* post(at, JSON.stringify({ block: 1, weights: "" }), CONTRIBUTOR_API_KEY)).status).toBe(400)
        // Over the body limit: refused before it is read whole, with a 413 or by closing the connection.
        expect([413, "reset"]).toContain(yield* postedStatus(at, JSON.stringify({ pad: "x".repeat(9 * 1024 * 1024) }), CONTRIBUTOR_API_KEY))
        const stale = yield* post(at, body(yield* signed(state.current.get("layer0.expert0")!.block)), CONTRIBUTOR_API_KEY)
        expect(stale.status).toBe(422)
        expect(JSON.parse(stale.text).message).toMatch(/^stale base/)
        expect(yield* events.head).toEqual(head)
        const accepted = yield* post(at, good, CONTRIBUTOR_API_KEY)
        expect(accepted.status, accepted.text).toBe(200)
        const report = JSON.parse(accepted.text) as { accepted: boolean; block: string }
        expect(report.accepted).toBe(true)
        expect((yield* on(foldStream("*", ModelProjection))).state.current.get("layer0.expert1")?.block).toBe(report.block)
      }).pipe(Effect.provide(Runtime)),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "POST /api/chat streams each token as it is generated, with the experts that produced it (gate, block, and the node and request that ran it), then the request its receipts are recorded under",
    () =>
      Effect.gen(function* () {
        const { url, events, on, client } = yield* serve({ node: true })
        const blocks = new Map((yield* client.ledger.model()).parts.map((p) => [p.name, p.block]))
        const body = JSON.stringify({ prompt: "The river", maxTokens: 12, seed: 5 })
        const answer = yield* openSse<ChatEvent>(`${url}/api/chat`, { method: "POST", body, headers: { "content-type": "application/json" } })
        expect(answer.status).toBe(200)
        expect(answer.contentType).toBe("text/event-stream")
        const streamed = yield* answer.read((es) => es.some((e) => e.event !== "token"))
        const tokens = streamed.filter((e) => e.event === "token").map((e) => e.data)
        const done = streamed.at(-1)!
        expect(done.event, JSON.stringify(done.data)).toBe("done")
        expect(tokens.map((t) => t.index)).toEqual([...Array(12).keys()])
        for (const t of tokens) {
          expect(t.experts).toHaveLength(tinySpec.layers * tinySpec.topK)
          for (const e of t.experts) expect([e.node, e.block]).toEqual([NODE, blocks.get(`layer${e.layer}.expert${e.expert}`)])
        }
        // The ledger's model answering here gives the same bytes: what streamed is the model's answer.
        const local = yield* on(localChat("The river", { maxTokens: 12, temperature: 0.8, seed: 5 }))
        expect(tokens.map((t) => t.token)).toEqual(local.tokens)
        // Every expert request a token names has its node's receipt on the log, under the chat's request (the prompt's own rows have more).
        const receipts = (yield* logOf(events)).flatMap((e) =>
          e.type === "InferenceServed" && (e.data as { request: string }).request === done.data.request ? (e.data as { receipts: ReadonlyArray<{ requestId: string }> }).receipts : []
        )
        const receipted = new Set(receipts.map((r) => r.requestId))
        expect(tokens.flatMap((t) => t.experts.map((e) => e.request)).filter((r) => !receipted.has(r!))).toEqual([])
      }).pipe(Effect.provide(Runtime)),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "POST /api/chat: bad JSON, wrong types and out-of-range settings are a 400 naming what is wrong; no node to run the experts is a `failed` event with the reason; none of these changes anything",
    () =>
      Effect.gen(function* () {
        const { url, events } = yield* served
        const at = `${url}/api/chat`
        const head = yield* events.head
        for (const bad of ["{not json", "{}", '{"prompt":""}', '{"prompt":7}', '{"prompt":"x","maxTokens":0}', '{"prompt":"x","maxTokens":257}', '{"prompt":"x","temperature":"hot"}', '{"prompt":"x","seed":1.5}', '{"prompt":"x","model":"a/b"}', '{"prompt":"x","model":""}']) {
          const r = yield* post(at, bad)
          expect(r.status, bad).toBe(400)
        }
        const answer = yield* openSse<ChatEvent>(at, { method: "POST", body: '{"prompt":"x"}', headers: { "content-type": "application/json" } })
        const streamed = yield* answer.read(() => false)
        expect(streamed.map((e) => e.event)).toEqual(["failed"])
        expect(streamed[0]!.data.message).toMatch(/^no replica of layer\d+\.expert\d+ answered/)
        const unknown = yield* openSse<ChatEvent>(at, { method: "POST", body: '{"prompt":"x","model":"nope"}', headers: { "content-type": "application/json" } })
        const refused = yield* unknown.read(() => false)
        expect(refused.map((e) => [e.event, e.data.message])).toEqual([["failed", 'the ledger holds no model named "nope" (it holds blyan-moe)']])
        expect(yield* events.head).toEqual(head)
      }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "/api/live streams the log as server-sent events: from a seq, or what is appended from now on, each as stored",
    () =>
      Effect.gen(function* () {
        const { url, log, events, on } = yield* served
        const from = yield* openSse(`${url}/api/live?from=${log.length - 3}`)
        expect(from.contentType).toBe("text/event-stream")
        const replayed = yield* from.read((es) => es.length >= 3)
        expect(replayed.map((e) => e.id)).toEqual([log.length - 3, log.length - 2, log.length - 1])
        expect(replayed.map((e) => e.data)).toEqual(log.slice(-3))
        // A listener from now on (its request taken) sees the next append, and nothing before it.
        const listener = yield* openSse(`${url}/api/live`)
        yield* on(handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, sha256Hex("live"), "node") }))
        const live = yield* listener.read((es) => es.length >= 1).pipe(Effect.timeout("10 seconds"))
        expect(live.map((e) => [e.id, e.data.type])).toEqual([[log.length, "ApiKeyIssued"]])
        expect((yield* events.head)!.seq).toBe(log.length)
      }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "/metrics is valid Prometheus text (promtool check metrics): the ledger's figures read off the read models, and every request counted and timed by route",
    () =>
      Effect.gen(function* () {
        const { url, log, onBus } = yield* served
        for (const p of ["/health", "/api/model", "/api/blocks/nothex", "/api/no-such-route"]) yield* get(`${url}${p}`)
        // A pipeline trainer's reports on the bus: a step done through two stages, a failed attempt, a step taken alone.
        const transport = { ...noTransport, chunks: 40, retries: 3, unreachable: 2, breakerOpened: 1 }
        yield* onBus(reportStep({ epoch: "E1", step: 1, outcome: "done", stages: [{ node: "pa", busyMs: 300 }, { node: "pb", busyMs: 600 }], wallMs: 1000, transport }))
        yield* onBus(reportStep({ epoch: "E1", step: 2, outcome: "failed", stages: [], wallMs: 0, transport: noTransport, failed: { stage: 1, node: "pb" } }))
        yield* onBus(reportStep({ epoch: "E1", step: 2, outcome: "alone", stages: [], wallMs: 0, transport: noTransport }))
        const r = yield* get(`${url}/metrics`).pipe(
          Effect.filterOrFail((m) => m.text.includes('outcome="alone"')),
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds"))),
          Effect.orDie
        )
        expect(r.status).toBe(200)
        const checked = promtool(r.text)
        expect(checked.error, "promtool (Debian package prometheus) is installed by .ci/run").toBeUndefined()
        expect(checked.code, checked.output).toBe(0)
        const blocks = replay(log, testTrust).state.chain.chainB.length
        expect(r.text).toContain(`blyan_chain_events{chain="B"} ${blocks}`)
        expect(r.text).toContain(`blyan_projected_seq ${log.length - 1}`)
        expect(r.text).toContain('blyan_contributions{outcome="accepted"} 1')
        expect(r.text).toMatch(/blyan_http_requests_total\{route="\/api\/blocks",status="400"\} 1/)
        expect(r.text).toMatch(/blyan_http_requests_total\{route="other",status="404"\} 1/)
        expect(r.text).toMatch(/blyan_http_request_duration_seconds_bucket\{le="\+Inf",route="\/health"\} 1/)
        for (const outcome of ["done", "failed", "alone"]) expect(r.text).toContain(`blyan_pipeline_steps_total{outcome="${outcome}"} 1`)
        expect(r.text).toContain("blyan_pipeline_stages 2")
        expect(r.text).toContain('blyan_pipeline_stage_failures_total{node="pb"} 1')
        // Stage 0 computed 0.3 of the step and waited 0.7 s; stage 1 computed 0.6 and waited 0.4 s.
        expect(r.text).toContain('blyan_pipeline_stage_occupancy_ratio_bucket{le="0.3",stage="0"} 1')
        expect(r.text).toContain('blyan_pipeline_stage_occupancy_ratio_bucket{le="0.5",stage="1"} 0')
        expect(r.text).toContain('blyan_pipeline_stage_wait_seconds_sum{stage="0"} 0.7')
        expect(r.text).toContain('blyan_pipeline_transport_total{kind="retries"} 3')
        expect(r.text).toContain('blyan_pipeline_transport_total{kind="breakerOpened"} 1')
      }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "bad input is a 400 naming what is wrong, an unknown id a 404; the OpenAPI document lists every route",
    () =>
      Effect.gen(function* () {
        const { url } = yield* served
        for (const bad of ["/api/chains/C/blocks", "/api/chains/A/blocks?limit=0", "/api/chains/A/blocks?limit=1001", "/api/chains/B/blocks?cursor=-1", "/api/events?from=x", "/api/blocks/nothex"]) {
          const r = yield* get(`${url}${bad}`)
          expect(r.status, bad).toBe(400)
          expect(r.text, bad).toMatch(/HttpApiDecodeError/)
        }
        for (const unknown of [`/api/blocks/${"0".repeat(64)}`, `/api/blocks/${"0".repeat(64)}/payload`, "/api/rounds/no-such-round", "/api/experts/layer9.expert9/history"]) expect((yield* get(`${url}${unknown}`)).status, unknown).toBe(404)
        const openapi = JSON.parse((yield* get(`${url}/openapi.json`)).text) as { paths: Record<string, unknown> }
        expect(Object.keys(openapi.paths).sort()).toEqual(
          [
            "/health",
            "/api/genesis",
            "/api/model",
            "/api/chains/{chain}/blocks",
            "/metrics",
            "/api/blocks/{hash}",
            "/api/blocks/{hash}/payload",
            "/api/experts/{name}/history",
            "/api/events",
            "/api/live",
            "/api/nodes",
            "/api/rounds",
            "/api/rounds/{id}",
            "/api/balances/{addr}",
            "/api/plans",
            "/api/contributions",
            "/api/chat"
          ].sort()
        )
      }).pipe(Effect.provide(Runtime)),
    { timeout: 60_000 }
  )
})
