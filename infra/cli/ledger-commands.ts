import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Chunk, Console, Effect, Option, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { EventStore } from "../../domain/ports/event-store.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { isValidStreamName, Streams } from "../../domain/ledger/streams.ts"
import { Role } from "../../domain/ledger/events.ts"
import { KeysProjection, decideIssueKey, decideRevokeKey } from "../../domain/projections/keys.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { auditLedger, auditView } from "../../actors/auditor.ts"
import { ORPHAN_GRACE_MS } from "../../actors/blob-gc.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { createLedger } from "../ledger.ts"
import { choiceOption, jsonOption, ledgerOptions } from "./options.ts"
import { CliFailure, emit, ExitCode, fail } from "./output.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"

const short = (h: string) => h.slice(0, 16)

export const initCommand = Command.make("init", { ...ledgerOptions, json: jsonOption }, ({ json }) =>
  Effect.gen(function* () {
    const r = yield* createLedger(defaultSpec)
    const what = r.genesis ? `initialised ledger in ${r.location}` : r.recorded ? `completed the ledger in ${r.location}` : `ledger in ${r.location} already initialised`
    yield* emit(json, { created: r.genesis, recorded: r.recorded, genesis: GENESIS_HASH, spec: r.specHash, blocksPublished: r.published, orphansRemoved: r.pruned, head: r.head }, () =>
      [what, ...(r.pruned > 0 ? [`removed ${r.pruned} orphan blobs`] : []), `genesis ${GENESIS_HASH}`, `model   ${defaultSpec.name} (spec ${r.specHash}), ${r.published} genesis blocks published`, `head    seq ${r.head?.seq} ${r.head?.hash}`].join(
        "\n"
      )
    )
  })
).pipe(Command.withDescription("create the ledger: the genesis covenant, the model spec and its genesis weights (idempotent)"))

export const auditCommand = Command.make("audit", { ...ledgerOptions, json: jsonOption }, ({ json }) =>
  Effect.gen(function* () {
    const progress = (done: number, total: number) => {
      if (process.stderr.isTTY) process.stderr.write(`\raudit: ${done}/${total} events`)
    }
    const report = yield* auditLedger(progress).pipe(
      Effect.catchTag("StoreFailure", (e): Effect.Effect<never, StoreFailure | CliFailure> =>
        e.seq === undefined ? Effect.fail(e) : fail(`audit FAILED: ${e.message}`, ExitCode.integrity, { ok: false, firstBad: { seq: e.seq, reason: e.reason } })
      )
    )
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K")
    const r = report.replay
    const badBlob = report.badBlobs[0]
    const firstBad = r.firstBad ?? badBlob
    const chain = r.state.chain
    const summary = {
      ok: firstBad === undefined,
      events: r.events,
      streams: r.streams.size,
      head: r.head,
      genesis: GENESIS_HASH,
      blocks: chain.chainB.length,
      blobs: report.blobs,
      keys: r.state.keys.size,
      firstBad,
      badBlobs: report.badBlobs,
      incomplete: report.incomplete,
      orphans: report.orphans.length,
      projections: json ? auditView(report) : undefined
    }
    if (!summary.ok) {
      const where = summary.firstBad && "seq" in summary.firstBad ? `seq ${summary.firstBad.seq}` : `blob ${summary.firstBad?.blob}`
      return yield* fail(`audit FAILED at ${where}: ${summary.firstBad?.reason}`, ExitCode.integrity, summary)
    }
    yield* emit(json, summary, () =>
      [
        `audit OK: ${r.events} events in ${r.streams.size} streams verified from genesis`,
        `genesis ${GENESIS_HASH}`,
        `head    seq ${r.head?.seq} ${r.head?.hash}`,
        `blocks  ${chain.chainB.length} (blobs ${report.blobs} verified), keys ${r.state.keys.size}`,
        ...(report.incomplete.length > 0
          ? [`note    an interrupted operation left ${report.incomplete.length} expert streams without their ExpertUpdated; the next init, up or train records them`]
          : []),
        ...(report.orphans.length > 0 ? [`note    ${report.orphans.length} stored blobs are referenced by no event (left by an interrupted writer); init and up remove them once ${ORPHAN_GRACE_MS / 60_000} minutes old`] : [])
      ].join("\n")
    )
  })
).pipe(Command.withDescription("replay the ledger from genesis and verify every hash, link, schema, stream, signature and blob"))

const streamOption = Options.text("stream").pipe(Options.optional, Options.withDescription("only this stream"))
const fromOption = Options.integer("from").pipe(Options.withDefault(0), Options.withDescription("first seq to show"))

export const eventsCommand = Command.make("events", { ...ledgerOptions, json: jsonOption, stream: streamOption, from: fromOption }, ({ json, stream, from }) =>
  Effect.gen(function* () {
    if (from < 0) return yield* fail(`--from must be a non-negative seq, got ${from}`, ExitCode.usage)
    if (Option.isSome(stream) && !isValidStreamName(stream.value))
      return yield* fail(`--stream ${JSON.stringify(stream.value)} is not a stream name (chain-A, chain-B, keys, rewards, inference, expert-L.E, node-ID, round-ID, epoch-ID)`, ExitCode.usage)
    const store = yield* EventStore
    const shown = Option.isSome(stream)
      ? (yield* store.read(stream.value)).filter((e) => e.seq >= from)
      : Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll(from)))
    if (json) return yield* Console.log(JSON.stringify(shown, null, 2))
    for (const e of shown) yield* Console.log(`${String(e.seq).padStart(6)}  ${e.at}  ${e.stream.padEnd(14)} ${e.type.padEnd(22)} ${short(e.hash)}`)
  })
).pipe(Command.withDescription("list events of the ledger"))

const roleOption = choiceOption("role", Role.literals)
const labelOption = Options.text("label").pipe(Options.optional)

const keysCreate = Command.make("create", { ...ledgerOptions, json: jsonOption, role: roleOption, label: labelOption }, ({ json, role, label }) =>
  Effect.gen(function* () {
    const key = `bly_${role}_${randomBytes(24).toString("base64url")}`
    const keyHash = sha256Hex(key)
    const r = yield* handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, keyHash, role, Option.getOrUndefined(label)) })
    yield* emit(json, { key, keyHash, role, seq: r?.head.seq }, () =>
      [`${key}`, `role ${role}; this key is shown once: only its sha256 (${keyHash}) is recorded`].join("\n")
    )
  })
).pipe(Command.withDescription("issue an API key (printed once; only its sha256 is recorded)"))

const keyHashOption = Options.text("key-hash").pipe(
  Options.withDescription("the key's sha256 (64 hex digits), as `keys list` shows it"),
  Options.mapEffect((v) =>
    /^[0-9a-f]{64}$/.test(v)
      ? Effect.succeed(v)
      : // Never echo the value: it may be the key itself, pasted by mistake.
        Effect.fail(
          ValidationError.invalidValue(
            HelpDoc.p("--key-hash must be the key's sha256 as `keys list` shows it (64 lowercase hex digits); the value given is not, and is not repeated here in case it is the key itself")
          )
        )
  )
)

const keysRevoke = Command.make(
  "revoke",
  { ...ledgerOptions, json: jsonOption, reason: Options.text("reason").pipe(Options.optional), keyHash: keyHashOption },
  ({ json, keyHash, reason }) =>
    Effect.gen(function* () {
      const r = yield* handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideRevokeKey(s, keyHash, Option.getOrUndefined(reason)) })
      yield* emit(json, { keyHash, revoked: true, seq: r?.head.seq }, () => `revoked ${keyHash}`)
    })
).pipe(Command.withDescription("revoke an API key by its sha256"))

const keysList = Command.make("list", { ...ledgerOptions, json: jsonOption }, ({ json }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream(Streams.keys, KeysProjection)
    const keys = KeysProjection.view(state) as ReadonlyArray<{ keyHash: string; role: string; revoked: boolean; issuedSeq: number }>
    yield* emit(json, keys, () => keys.map((k) => `${k.keyHash}  ${k.role.padEnd(11)} ${k.revoked ? "revoked" : "active"}  seq ${k.issuedSeq}`).join("\n") || "no keys")
  })
).pipe(Command.withDescription("list issued API keys (hashes and roles)"))

export const keysCommand = Command.make("keys").pipe(
  Command.withSubcommands([keysCreate, keysRevoke, keysList]),
  Command.withDescription("API keys")
)
