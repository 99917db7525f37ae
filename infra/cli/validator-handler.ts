/** What `blyan validator` does. Loaded when it runs (see validator.ts). */
import * as path from "node:path"
import { Console, Effect, Either } from "effect"
import { runValidator } from "../../actors/validator.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeFileReplica } from "../../adapters/eventstore/file.ts"
import { makeFileBlobStore } from "../../adapters/blobs/file.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { localKey } from "../identity.ts"
import { parseNatsBus } from "../ledger.ts"
import { modelRunnerLayer } from "../model-layer.ts"
import { networkTimings } from "../network-settings.ts"
import { readUtf8 } from "./files.ts"
import { ExitCode, fail } from "./output.ts"

export const runValidatorProcess = (args: { readonly nats: string; readonly apiKey: string; readonly data: string; readonly heldOut: string }) =>
  Effect.gen(function* () {
    const servers = parseNatsBus(args.nats)
    if (Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    const heldOut = yield* readUtf8(args.heldOut)
    const dir = path.resolve(args.data)
    const key = yield* localKey(dir, "validator")
    const { timeoutMs, heartbeatMs } = yield* networkTimings
    const replica = yield* makeFileReplica(path.join(dir, "ledger"))
    const blobs = yield* makeFileBlobStore(dir)
    const bus = yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
    yield* Console.error(`blyan validator: key ${key.publicKey}, data ${dir}, on ${servers.right.join(",")}`)
    yield* runValidator({ key, apiKey: args.apiKey, heldOut, timeoutMs, heartbeatMs, onStatus: (line) => console.log(`validator: ${line}`) }, replica).pipe(
      Effect.catchTag("ValidatorRefused", (e) => fail(e.message, ExitCode.refused)),
      Effect.provideService(Bus, bus),
      Effect.provideService(BlobStore, blobs)
    )
  }).pipe(Effect.scoped, Effect.provide(modelRunnerLayer))
