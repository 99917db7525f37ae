/**
 * Distributed chat with imported checkpoints of growing expert size (run: `npx tsx
 * bench/imported-network.ts`, after `npm run build`), written to bench/results/imported-network.json.
 * For each size, a synthetic Mixtral-shaped checkpoint (BENCH_IMPORTED_LAYERS layers of 8 experts,
 * top 2, bf16, random weights, a small byte-level tokenizer) is imported into a fresh ledger;
 * `blyan up --nats` holds it and routes, one `blyan node --model` process hosts every expert. Then,
 * alternately: tokens/s of a chat the network answers (every expert of every token on the node)
 * against generation from the same weights in this process; both greedy, both must give the same
 * tokens. The question is how the ratio moves as an expert's compute grows against the round trip.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, ManagedRuntime } from "effect"
import { askChat } from "../actors/chat-service.ts"
import { makeNatsBus } from "../adapters/bus/nats.ts"
import { OnnxExecutorLive } from "../adapters/executor/onnxruntime.ts"
import { Bus } from "../domain/ports/bus.ts"
import { generateFamily } from "../domain/model/families/generate.ts"
import { loadTokenizer } from "../domain/model/families/tokenizer.ts"
import { buildFamilyGraphs } from "../domain/model/onnx/families.ts"
import { tinyMixtralConfig } from "../test/support/family-weights.ts"
import { writeHfCheckpoint } from "../test/support/hf-checkpoint.ts"
import { benchProcesses } from "./processes.ts"
import { machineInfo, writeResults } from "./record.ts"

const NATS = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222"
const TOKENS = Number(process.env.BENCH_GEN_TOKENS ?? 24)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3)
const LAYERS = Number(process.env.BENCH_IMPORTED_LAYERS ?? 4)
/** Hidden sizes; each expert's inner size is 3.5 times it, as Mixtral's (4096 → 14336). */
const HIDDEN = (process.env.BENCH_IMPORTED_HIDDEN ?? "128,512,1024").split(",").map(Number)
const PROMPT = "the theater of the ledger"

const { root, blyan, start, nodesServing, stopAll } = benchProcesses("imported-network", { BLYAN_HEARTBEAT_MS: "100", BLYAN_SPOTCHECK_RATE: "0", BLYAN_REQUEST_TIMEOUT_MS: "30000" })
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits
const rt = ManagedRuntime.make(OnnxExecutorLive({ device: "cpu" }))

/** One size: the local and distributed figures, measured alternately. */
const measure = async (hidden: number) => {
  const name = `mix-${hidden}`
  const data = path.join(root, name)
  const expertFF = Math.round((hidden * 3.5) / 64) * 64
  const c = writeHfCheckpoint(path.join(root, `${name}-hf`), tinyMixtralConfig, {
    config: { hidden_size: hidden, intermediate_size: expertFF, num_hidden_layers: LAYERS, num_attention_heads: 8, num_key_value_heads: 2, num_local_experts: 8, max_position_embeddings: 256 }
  })
  blyan(["init", "--data", data])
  blyan(["import", "--hf", c.dir, "--name", name, "--data", data])
  const { key } = JSON.parse(blyan(["keys", "create", "--role", "node", "--json", "--data", data])) as { key: string }
  start(["up", "--data", data, "--nats", NATS, "--train-steps", "0", "--port", "0"])
  await new Promise((r) => setTimeout(r, 1500))
  start(["node", "--nats", NATS, "--api-key", key, "--data", path.join(root, `${name}-node`), "--node-id", "b1", "--model", name])
  await nodesServing(data, 1)

  const tokenizer = loadTokenizer(fs.readFileSync(path.join(c.dir, "tokenizer.json")), fs.readFileSync(path.join(c.dir, "tokenizer_config.json")), c.spec.vocab)
  if (tokenizer._tag === "Left") throw new Error(tokenizer.left.message)
  const graphs = buildFamilyGraphs(c.spec)
  const prompt = tokenizer.right.encode(PROMPT)
  const local = async () => {
    const t0 = performance.now()
    const r = await rt.runPromise(generateFamily(c.spec, graphs, c.weights, prompt, { maxTokens: TOKENS, temperature: 0, seed: 1 }))
    return { perSec: r.tokens.length / ((performance.now() - t0) / 1000), tokens: r.tokens.join() }
  }
  const program = Effect.gen(function* () {
    const bus = yield* makeNatsBus([NATS])
    const distributed = Effect.gen(function* () {
      const t0 = performance.now()
      const answer = yield* askChat({ prompt: PROMPT, maxTokens: TOKENS, temperature: 0, seed: 1, model: name }, 600_000).pipe(Effect.provideService(Bus, bus))
      return { perSec: answer.tokens.length / ((performance.now() - t0) / 1000), tokens: answer.tokens.join() }
    })
    // Warm both: graphs compiled, sessions created, weights converted.
    yield* Effect.promise(local)
    yield* distributed
    const here: number[] = []
    const net: number[] = []
    for (let r = 0; r < REPEATS; r++) {
      const a = yield* Effect.promise(local)
      const b = yield* distributed
      if (a.tokens !== b.tokens) return yield* Effect.die(new Error(`${name}: distributed generation gave other tokens than local generation`))
      here.push(a.perSec)
      net.push(b.perSec)
    }
    return { here, net }
  })
  try {
    const { here, net } = await Effect.runPromise(Effect.scoped(program))
    return {
      hidden,
      expertFF,
      expertParams: 3 * hidden * expertFF,
      localTokensPerSec: round(median(here)),
      distributedTokensPerSec: round(median(net)),
      ratio: round(median(net) / median(here), 2),
      msPerToken: { local: round(1000 / median(here), 2), distributed: round(1000 / median(net), 2) }
    }
  } finally {
    await stopAll()
  }
}

try {
  const sizes = []
  for (const hidden of HIDDEN) {
    const r = await measure(hidden)
    console.log(`hidden ${r.hidden}, experts of ${(r.expertParams / 1e6).toFixed(2)} M weights: local ${r.localTokensPerSec} tokens/s, distributed ${r.distributedTokensPerSec} tokens/s: ${r.ratio}x`)
    sizes.push(r)
  }
  writeResults("imported-network", {
    bench: "imported-network",
    date: new Date().toISOString(),
    machine: machineInfo(),
    note: `medians of ${REPEATS} alternating runs; greedy, batch 1, ${TOKENS} new tokens; synthetic Mixtral-shaped checkpoints (${LAYERS} layers, 8 experts, top 2, bf16) imported, the router in blyan up, one blyan node process hosting every expert, NATS on loopback; local is generation from the same weights in the bench's process; both gave the same tokens`,
    sizes
  })
} finally {
  await rt.dispose()
  fs.rmSync(root, { recursive: true, force: true })
}
