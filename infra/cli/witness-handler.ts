/** What `blyan witness` does. Loaded when it runs (see witness.ts). */
import * as fs from "node:fs"
import * as path from "node:path"
import { Console, Effect, Either, Option, Schedule } from "effect"
import { askLedgerHead, runWitness } from "../../actors/witness.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { makeFileEventStore } from "../../adapters/eventstore/file.ts"
import { makeFileTreeHeadStore } from "../../adapters/tree-heads/file.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { TreeHeadStore } from "../../domain/ports/tree-head-store.ts"
import { localKey } from "../identity.ts"
import { parseNatsBus } from "../ledger.ts"
import { networkTimings } from "../network-settings.ts"
import { ExitCode, fail } from "./output.ts"
import type { KeyPair } from "../../domain/ledger/signing.ts"

/**
 * The ledger key this witness follows, pinned in `<dir>/ledger.pub`: the one given, or the one
 * pinned before, or the key of the first head it meets. A witness never switches ledgers.
 */
const followedLedger = (dir: string, given: Option.Option<string>, timeoutMs: number) =>
  Effect.gen(function* () {
    const file = path.join(dir, "ledger.pub")
    const pinned = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : undefined
    if (pinned !== undefined && Option.isSome(given) && given.value !== pinned)
      return yield* fail(`this witness follows the ledger key ${pinned}, not ${given.value}: use another --data for another ledger`, ExitCode.usage)
    if (pinned !== undefined) return pinned
    const key = Option.isSome(given) ? given.value : (yield* askLedgerHead(timeoutMs)).publicKey
    fs.writeFileSync(file, `${key}\n`)
    if (Option.isNone(given)) yield* Console.error(`witness: following the ledger key ${key}, trusted on first use`)
    return key
  })

/**
 * Witness the ledger on the bus from `dir` (its own log, the heads it co-signed, the pinned ledger
 * key) with `key`, until the scope closes; each status line on stdout.
 */
export const witnessFrom = (dir: string, key: KeyPair, ledgerKey: Option.Option<string>, timing: { readonly intervalMs: number; readonly timeoutMs: number }) =>
  Effect.gen(function* () {
    fs.mkdirSync(dir, { recursive: true })
    const events = yield* makeFileEventStore(path.join(dir, "log"))
    // A ledger not answering yet is asked again, every interval.
    const ledger = yield* followedLedger(dir, ledgerKey, timing.timeoutMs).pipe(
      Effect.retry({ schedule: Schedule.spaced(`${timing.intervalMs} millis`), while: (e) => e._tag !== "CliFailure" })
    )
    yield* Console.error(`witness: key ${key.publicKey}, data ${dir}, ledger ${ledger}`)
    yield* runWitness({ key, ledger, ...timing, onStatus: (line) => console.log(`witness: ${line}`) }).pipe(
      Effect.provideService(EventStore, events),
      Effect.provideService(TreeHeadStore, makeFileTreeHeadStore(dir))
    )
  }).pipe(Effect.scoped)

export const witness = (args: { readonly nats: string; readonly data: string; readonly ledgerKey: Option.Option<string>; readonly intervalMs: number }) =>
  Effect.gen(function* () {
    const servers = parseNatsBus(args.nats)
    if (Either.isLeft(servers)) return yield* fail(`--nats: ${servers.left}`, ExitCode.usage)
    if (args.intervalMs < 10 || args.intervalMs > 3_600_000) return yield* fail(`--interval-ms must be within 10..3600000, got ${args.intervalMs}`, ExitCode.usage)
    const dir = path.resolve(args.data)
    const key = yield* localKey(dir, "witness")
    const { timeoutMs } = yield* networkTimings
    const bus = yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(e.message, ExitCode.unavailable)))
    yield* Console.error(`blyan witness on ${servers.right.join(",")}`)
    yield* witnessFrom(dir, key, args.ledgerKey, { intervalMs: args.intervalMs, timeoutMs }).pipe(Effect.provideService(Bus, bus))
  }).pipe(Effect.scoped)
