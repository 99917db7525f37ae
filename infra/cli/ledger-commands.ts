import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import { EventStore } from "../../domain/ports/event-store.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { Streams } from "../../domain/ledger/streams.ts"
import { Role } from "../../domain/ledger/events.ts"
import { KeysProjection, decideIssueKey, decideRevokeKey } from "../../domain/projections/keys.ts"
import { ensureGenesis, initLedger } from "../../actors/genesis.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { auditLedger, auditView } from "../../actors/auditor.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { fileLedger } from "../ledger.ts"
import { choiceOption, dataOption, jsonOption } from "./options.ts"
import { emit, fail, orFail } from "./output.ts"

const short = (h: string) => h.slice(0, 16)

export const initCommand = Command.make("init", { data: dataOption, json: jsonOption }, ({ data, json }) =>
  Effect.gen(function* () {
    const r = yield* initLedger(defaultSpec)
    const head = yield* (yield* EventStore).head
    yield* emit(json, { created: r.created, genesis: GENESIS_HASH, spec: r.specHash, blocksPublished: r.published, head }, () =>
      [
        r.created ? `initialised ledger in ${data}` : `ledger in ${data} already initialised`,
        `genesis ${GENESIS_HASH}`,
        `model   ${defaultSpec.name} (spec ${r.specHash}), ${r.published} genesis blocks published`,
        `head    seq ${head?.seq} ${head?.hash}`
      ].join("\n")
    )
  }).pipe(orFail, Effect.provide(fileLedger(data)), orFail)
).pipe(Command.withDescription("create the ledger: the genesis covenant, the model spec and its genesis weights (idempotent)"))

export const auditCommand = Command.make("audit", { data: dataOption, json: jsonOption }, ({ data, json }) =>
  Effect.gen(function* () {
    const progress = (done: number, total: number) => {
      if (process.stderr.isTTY) process.stderr.write(`\raudit: ${done}/${total} events`)
    }
    const report = yield* auditLedger(progress).pipe(
      Effect.provide(fileLedger(data, { readOnly: true })),
      Effect.catchTag("StoreFailure", (e) => fail(`audit FAILED: ${e.message}`, 1, { ok: false, firstBad: { seq: e.seq, reason: e.reason } }))
    )
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K")
    const r = report.replay
    const badBlob = report.badBlobs[0]
    const firstBad = r.firstBad ?? badBlob
    const chain = r.state.chain
    const summary = {
      ok: firstBad === undefined && r.events > 0,
      events: r.events,
      streams: r.streams.size,
      head: r.head,
      genesis: GENESIS_HASH,
      blocks: chain.chainB.length,
      blobs: report.blobs,
      keys: r.state.keys.size,
      firstBad: r.events === 0 && !firstBad ? { seq: 0, reason: "the log is empty: run `blyan init`" } : firstBad,
      badBlobs: report.badBlobs,
      projections: json ? auditView(report) : undefined
    }
    if (!summary.ok) {
      const where = summary.firstBad && "seq" in summary.firstBad ? `seq ${summary.firstBad.seq}` : `blob ${summary.firstBad?.blob}`
      return yield* fail(`audit FAILED at ${where}: ${summary.firstBad?.reason}`, 1, summary)
    }
    yield* emit(json, summary, () =>
      [
        `audit OK: ${r.events} events in ${r.streams.size} streams verified from genesis`,
        `genesis ${GENESIS_HASH}`,
        `head    seq ${r.head?.seq} ${r.head?.hash}`,
        `blocks  ${chain.chainB.length} (blobs ${report.blobs} verified), keys ${r.state.keys.size}`
      ].join("\n")
    )
  }).pipe(orFail)
).pipe(Command.withDescription("replay the ledger from genesis and verify every hash, link, schema, signature and blob"))

const streamOption = Options.text("stream").pipe(Options.optional, Options.withDescription("only this stream"))
const fromOption = Options.integer("from").pipe(Options.withDefault(0), Options.withDescription("first seq to show"))

export const eventsCommand = Command.make("events", { data: dataOption, json: jsonOption, stream: streamOption, from: fromOption }, ({ data, json, stream, from }) =>
  Effect.gen(function* () {
    if (from < 0) return yield* fail(`--from must be a non-negative seq, got ${from}`, 2)
    const store = yield* EventStore
    const all = Option.isSome(stream) ? yield* store.read(stream.value) : yield* store.readAll(from)
    const shown = all.filter((e) => e.seq >= from)
    if (json) return yield* Console.log(JSON.stringify(shown, null, 2))
    for (const e of shown) yield* Console.log(`${String(e.seq).padStart(6)}  ${e.at}  ${e.stream.padEnd(14)} ${e.type.padEnd(22)} ${short(e.hash)}`)
  }).pipe(orFail, Effect.provide(fileLedger(data, { readOnly: true })), orFail)
).pipe(Command.withDescription("list events of the ledger"))

const roleOption = choiceOption("role", Role.literals)
const labelOption = Options.text("label").pipe(Options.optional)

const keysCreate = Command.make("create", { data: dataOption, json: jsonOption, role: roleOption, label: labelOption }, ({ data, json, role, label }) =>
  Effect.gen(function* () {
    const key = `bly_${role}_${randomBytes(24).toString("base64url")}`
    const keyHash = sha256Hex(key)
    yield* ensureGenesis
    const r = yield* handleCommand(Streams.keys, KeysProjection, (s) => decideIssueKey(s, keyHash, role, Option.getOrUndefined(label)))
    yield* emit(json, { key, keyHash, role, seq: r.head.seq }, () =>
      [`${key}`, `role ${role}; this key is shown once: only its sha256 (${keyHash}) is recorded`].join("\n")
    )
  }).pipe(orFail, Effect.provide(fileLedger(data)), orFail)
).pipe(Command.withDescription("issue an API key (printed once; only its sha256 is recorded)"))

const keysRevoke = Command.make(
  "revoke",
  { data: dataOption, json: jsonOption, keyHash: Options.text("key-hash"), reason: Options.text("reason").pipe(Options.optional) },
  ({ data, json, keyHash, reason }) =>
    Effect.gen(function* () {
      const r = yield* handleCommand(Streams.keys, KeysProjection, (s) => decideRevokeKey(s, keyHash, Option.getOrUndefined(reason)))
      yield* emit(json, { keyHash, revoked: true, seq: r.head.seq }, () => `revoked ${keyHash}`)
    }).pipe(orFail, Effect.provide(fileLedger(data)), orFail)
).pipe(Command.withDescription("revoke an API key by its sha256"))

const keysList = Command.make("list", { data: dataOption, json: jsonOption }, ({ data, json }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream(Streams.keys, KeysProjection)
    const keys = KeysProjection.view(state) as ReadonlyArray<{ keyHash: string; role: string; revoked: boolean; issuedSeq: number }>
    yield* emit(json, keys, () => keys.map((k) => `${k.keyHash}  ${k.role.padEnd(11)} ${k.revoked ? "revoked" : "active"}  seq ${k.issuedSeq}`).join("\n") || "no keys")
  }).pipe(orFail, Effect.provide(fileLedger(data, { readOnly: true })), orFail)
).pipe(Command.withDescription("list issued API keys (hashes and roles)"))

export const keysCommand = Command.make("keys").pipe(
  Command.withSubcommands([keysCreate, keysRevoke, keysList]),
  Command.withDescription("API keys")
)
