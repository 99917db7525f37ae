/** What `blyan node` does. Loaded when it runs (see node.ts). */
import * as os from "node:os"
import * as path from "node:path"
import { Console, Effect, Either, Option, Schema } from "effect"
import { runNode } from "../../actors/node-agent.ts"
import { serveStageWork } from "../../actors/stage-worker.ts"
import { transportSettings } from "../pipeline-settings.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeFileReplica } from "../../adapters/eventstore/file.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { OnnxExecutorLive } from "../../adapters/executor/onnxruntime.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { NodeId } from "../../domain/network/registration.ts"
import { localKey } from "../identity.ts"
import { witnessFrom } from "./witness-handler.ts"
import { parseNatsBus } from "../ledger.ts"
import { networkTimings } from "../network-settings.ts"
import { ExitCode, fail } from "./output.ts"

/** `all`, or `L.E,L.E,…`. */
const parseExperts = (s: string): Either.Either<"all" | ReadonlyArray<{ layer: number; expert: number }>, string> => {
  if (s === "all") return Either.right("all")
  const list = s.split(",").map((x) => /^(\d{1,6})\.(\d{1,6})$/.exec(x.trim()))
  return list.every((m) => m !== null) ? Either.right(list.map((m) => ({ layer: Number(m![1]), expert: Number(m![2]) }))) : Either.left(`--experts must be all or LAYER.EXPERT,…; got ${JSON.stringify(s)}`)
}

export const runNodeAgent = (args: {
  readonly nats: string
  readonly apiKey: string
  readonly data: string
  readonly nodeId: Option.Option<string>
  readonly model: Option.Option<string>
  readonly experts: string
  readonly device: "cpu" | "cuda"
}) =>
  Effect.gen(function* () {
    const servers = parseNatsBus(args.nats)
    if (Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    const experts = parseExperts(args.experts)
    if (Either.isLeft(experts)) return yield* fail(experts.left, ExitCode.usage)
    const dir = path.resolve(args.data)
    const key = yield* localKey(dir, "node")
    const node = Option.getOrElse(args.nodeId, () => `node-${key.publicKey.slice(0, 12)}`)
    if (!Schema.is(NodeId)(node))
      return yield* fail(`--node-id must be 1 to 128 letters, digits, _ or -; got ${JSON.stringify(node)}`, ExitCode.usage)
    const timings = yield* networkTimings
    const replica = yield* makeFileReplica(path.join(dir, "ledger"))
    const blobs = yield* makeFileBlobStore(dir)
    const bus = yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
    yield* Console.error(`blyan node ${node}: key ${key.publicKey}, data ${dir}, on ${servers.right.join(",")}`)
    // Every node also witnesses the ledger's heads, with its own key, in its own directory; never fatal to serving.
    yield* Effect.forkScoped(
      witnessFrom(path.join(dir, "witness"), key, Option.none(), { intervalMs: 5000, timeoutMs: timings.timeoutMs }).pipe(
        Effect.provideService(Bus, bus),
        Effect.catchAll((e) => Console.error(`node ${node}: not witnessing the ledger's heads: ${e.message}`))
      )
    )
    const transport = yield* transportSettings
    const serving = Effect.gen(function* () {
      // Every node also runs pipeline stages: a trainer's work orders come to its own subject.
      yield* serveStageWork(node, transport)
      return yield* runNode(
        {
          node,
          apiKey: args.apiKey,
          seed: key.seed,
          device: args.device,
          memory: os.totalmem(),
          models: Option.match(args.model, { onNone: () => "latest" as const, onSome: (name) => [name] }),
          experts: experts.right,
          timeoutMs: timings.timeoutMs,
          heartbeatMs: timings.heartbeatMs,
          watchMs: timings.heartbeatMs,
          onStatus: (status, reason) => console.log(`node ${node}: ${status}${reason === undefined ? "" : ` (${reason})`}`)
        },
        replica
      )
    })
    yield* serving.pipe(
      Effect.provideService(Bus, bus),
      Effect.provideService(BlobStore, blobs),
      // One thread per session: a node answers small requests, and spinning pool threads would take the cores its neighbours need.
      Effect.provide(OnnxExecutorLive({ device: args.device, intraOpThreads: 1 }))
    )
  }).pipe(Effect.scoped)
