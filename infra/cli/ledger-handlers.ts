/**
 * What init, audit, events and keys do. Loaded when one of them runs (see ledger-commands.ts): the
 * stores, the replay and the domain's schemas stay out of `--help`.
 */
import { Chunk, Console, Effect, Option, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { EventStore } from "../../domain/ports/event-store.ts"
import { GENESIS_HASH } from "../../domain/ledger/genesis.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { isValidStreamName, Streams } from "../../domain/ledger/streams.ts"
import type { Role } from "../../domain/ledger/events.ts"
import { KeysProjection, decideIssueKey, decideRevokeKey } from "../../domain/projections/keys.ts"
import { NodesProjection, type NodeEntry } from "../../domain/projections/nodes.ts"
import { modelList, ModelProjection } from "../../domain/projections/model.ts"
import { formatBly, parseBly } from "../../domain/rewards/inference.ts"
import { BalancesProjection, decideTransfer, signTransfer } from "../../domain/projections/balances.ts"
import { sideBySide } from "../../domain/projections/projection.ts"
import { homeConfig, setting } from "../config.ts"
import { localKey } from "../identity.ts"
import { defaultSpec } from "../../domain/model/spec.ts"
import { auditLedger, auditView } from "../../actors/auditor.ts"
import { ORPHAN_GRACE_MS } from "../../actors/blob-gc.ts"
import type { SnapshotAudit } from "../../actors/snapshot-audit.ts"
import { foldStream, handleCommand } from "../../actors/command.ts"
import { createLedger, ledgerKey, trustedLedgerKeys } from "../ledger.ts"
import { logTreeHead, signLogHead, trustedHeads } from "../../actors/tree-heads.ts"
import { ledgerKeyName } from "../../domain/ledger/tree-head.ts"
import { CliFailure, emit, ExitCode, fail } from "./output.ts"
import type { StoreFailure } from "../../domain/ledger/errors.ts"

const short = (h: string) => h.slice(0, 16)

export const init = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const r = yield* createLedger(defaultSpec)
    // The ledger's key signs the tree head it is left at.
    yield* signLogHead(yield* ledgerKey, logTreeHead)
    const what = r.genesis ? `initialised ledger in ${r.location}` : r.recorded ? `completed the ledger in ${r.location}` : `ledger in ${r.location} already initialised`
    yield* emit(json, { created: r.genesis, recorded: r.recorded, genesis: GENESIS_HASH, spec: r.specHash, blocksPublished: r.published, orphansRemoved: r.pruned, head: r.head }, () =>
      [what, ...(r.pruned > 0 ? [`removed ${r.pruned} orphan blobs`] : []), `genesis ${GENESIS_HASH}`, `model   ${defaultSpec.name} (spec ${r.specHash}), ${r.published} genesis blocks published`, `head    seq ${r.head?.seq} ${r.head?.hash}`].join(
        "\n"
      )
    )
  })

/** The audit's snapshot lines: a bad snapshot is a stale cache, worth a note, never a failed audit. */
const snapshotLines = (a: SnapshotAudit): string[] => [
  ...(a.verified.length + a.unchecked.length > 0
    ? [`snapshots ${a.verified.length} equal to the replay${a.unchecked.length > 0 ? `, ${a.unchecked.length} taken after the audited head not checked` : ""}`]
    : []),
  ...a.bad.map((b) => `note    ${b.reason}; ${b.removed ? "removed (the next command rebuilds it)" : "not removed"}`)
]

export const audit = ({ json, trust, witness }: { readonly json: boolean; readonly trust: ReadonlyArray<string>; readonly witness: ReadonlyArray<string> }) =>
  Effect.gen(function* () {
    const progress = (done: number, total: number) => {
      if (process.stderr.isTTY) process.stderr.write(`\raudit: ${done}/${total} events`)
    }
    const trusted = [...(yield* trustedLedgerKeys), ...trust.map((publicKey) => ({ name: ledgerKeyName(publicKey), publicKey }))]
    const { heads, setAside } = yield* trustedHeads(trusted)
    // The bus client loads only for an audit that asks witnesses.
    const witnessed =
      witness.length === 0 ? undefined : yield* Effect.flatMap(Effect.promise(() => import("./witness-notes.ts")), (w) => w.witnessedHeads(witness, trusted.map((k) => k.name)))
    const report = yield* auditLedger({ onProgress: progress, heads: [...heads, ...(witnessed?.heads ?? [])], ledgerKeys: trusted.map((k) => k.publicKey) }).pipe(
      Effect.catchTag("StoreFailure", (e): Effect.Effect<never, StoreFailure | CliFailure> =>
        e.seq === undefined ? Effect.fail(e) : fail(`audit FAILED: ${e.message}`, ExitCode.integrity, { ok: false, firstBad: { seq: e.seq, reason: e.reason } })
      )
    )
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K")
    const r = report.replay
    const badBlob = report.badBlobs[0]
    const contradicted = report.heads.contradicted[0]
    const firstBad = r.firstBad ?? badBlob ?? (contradicted === undefined ? undefined : { head: contradicted, reason: contradicted })
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
      contributors: r.state.contributors.size,
      firstBad,
      badBlobs: report.badBlobs,
      incomplete: report.incomplete,
      orphans: report.orphans.length,
      snapshots: report.snapshots,
      treeHeads: { matched: report.heads.matched, contradicted: report.heads.contradicted, notTrusted: setAside.length },
      witnessed: witnessed === undefined ? undefined : { heads: witnessed.heads.length, witnesses: witnessed.witnesses, setAside: witnessed.setAside },
      projections: json ? auditView(report) : undefined
    }
    if (!summary.ok) {
      const bad = summary.firstBad!
      if ("head" in bad) return yield* fail(`audit FAILED against a signed tree head: ${bad.reason}`, ExitCode.integrity, summary)
      const where = "seq" in bad ? `seq ${bad.seq}` : `blob ${bad.blob}`
      return yield* fail(`audit FAILED at ${where}: ${bad.reason}`, ExitCode.integrity, summary)
    }
    yield* emit(json, summary, () =>
      [
        `audit OK: ${r.events} events in ${r.streams.size} streams verified from genesis`,
        `genesis ${GENESIS_HASH}`,
        `head    seq ${r.head?.seq} ${r.head?.hash}`,
        `blocks  ${chain.chainB.length} (blobs ${report.blobs} verified), keys ${r.state.keys.size}, contributors ${r.state.contributors.size}`,
        `heads   ${report.heads.matched} signed tree heads match the log${setAside.length > 0 ? ` (${setAside.length} not signed by a key trusted here, not checked)` : ""}`,
        ...(witnessed === undefined
          ? []
          : [`witness ${witnessed.heads.length} heads co-signed by ${witnessed.witnesses} witnesses among them${witnessed.setAside > 0 ? ` (${witnessed.setAside} notes without a witness signature of this ledger, not checked)` : ""}`]),
        ...(report.incomplete.length > 0
          ? [`note    an interrupted operation left ${report.incomplete.length} expert streams without their ExpertUpdated; the next init, up or train records them`]
          : []),
        ...(report.orphans.length > 0 ? [`note    ${report.orphans.length} stored blobs are referenced by no event (left by an interrupted writer); init and up remove them once ${ORPHAN_GRACE_MS / 60_000} minutes old`] : []),
        ...snapshotLines(report.snapshots)
      ].join("\n")
    )
  })

export const events = ({ json, stream, from }: { readonly json: boolean; readonly stream: Option.Option<string>; readonly from: number }) =>
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

export const keysCreate = ({ json, role, label }: { readonly json: boolean; readonly role: Role; readonly label: Option.Option<string> }) =>
  Effect.gen(function* () {
    const key = `bly_${role}_${randomBytes(24).toString("base64url")}`
    const keyHash = sha256Hex(key)
    const r = yield* handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideIssueKey(s, keyHash, role, Option.getOrUndefined(label)) })
    yield* emit(json, { key, keyHash, role, seq: r?.head.seq }, () =>
      [`${key}`, `role ${role}; this key is shown once: only its sha256 (${keyHash}) is recorded`].join("\n")
    )
  })

export const keysRevoke = ({ json, keyHash, reason }: { readonly json: boolean; readonly keyHash: string; readonly reason: Option.Option<string> }) =>
  Effect.gen(function* () {
    const r = yield* handleCommand({ stream: Streams.keys, projection: KeysProjection, decide: (s) => decideRevokeKey(s, keyHash, Option.getOrUndefined(reason)) })
    yield* emit(json, { keyHash, revoked: true, seq: r?.head.seq }, () => `revoked ${keyHash}`)
  })

export const keysList = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream(Streams.keys, KeysProjection)
    const keys = KeysProjection.view(state) as ReadonlyArray<{ keyHash: string; role: string; revoked: boolean; issuedSeq: number }>
    yield* emit(json, keys, () => keys.map((k) => `${k.keyHash}  ${k.role.padEnd(11)} ${k.revoked ? "revoked" : "active"}  seq ${k.issuedSeq}`).join("\n") || "no keys")
  })

export const nodesList = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", NodesProjection)
    const nodes = NodesProjection.view(state) as ReadonlyArray<NodeEntry>
    const shown = nodes.map((n) => ({ ...n, earnedBly: formatBly(BigInt(n.earned)) }))
    yield* emit(json, shown, () =>
      shown.length === 0
        ? "no nodes"
        : shown
            .map(
              (n) =>
                `${n.node.padEnd(20)} ${n.status.padEnd(8)} ${n.device.padEnd(5)} blocks ${String(n.blocks.length).padStart(3)}  served ${String(n.served).padStart(6)} (${n.rows} rows)  failures ${String(n.failures).padStart(4)}  earned ${n.earnedBly} BLY` +
                (n.status === "banned" ? `\n  banned${n.bannedUntil === undefined ? "" : ` until ${new Date(n.bannedUntil).toISOString()}`}: ${n.banReason}` : "")
            )
            .join("\n")
    )
  })

export const modelsList = ({ json }: { readonly json: boolean }) =>
  Effect.gen(function* () {
    const { state } = yield* foldStream("*", ModelProjection)
    const models = modelList(state)
    yield* emit(json, models, () =>
      models.length === 0
        ? "no models: run `blyan init`"
        : models
            .map((m) => `${m.name.padEnd(24)} ${m.family.padEnd(10)} ${m.layers} layers × ${m.experts} experts (top ${m.topK})  spec ${m.hash.slice(0, 16)}…${m.latest ? "  (latest: chat's default)" : ""}`)
            .join("\n")
    )
  })

/** What a transfer is decided on: the balances, and the node registry for nodes' keys. */
const WalletProjection = sideBySide("wallet", { balances: BalancesProjection, nodes: NodesProjection })

const ownKey = Effect.flatMap(setting(homeConfig), (home) => localKey(home, "contributor"))

export const balance = ({ json, address }: { readonly json: boolean; readonly address: Option.Option<string> }) =>
  Effect.gen(function* () {
    const who = Option.isSome(address) ? address.value : (yield* ownKey).publicKey
    const { state } = yield* foldStream(Streams.rewards, BalancesProjection)
    const units = state.balances.get(who) ?? 0n
    yield* emit(json, { address: who, units: units.toString(), bly: formatBly(units), supply: state.supply.toString() }, () =>
      `${who}: ${formatBly(units)} BLY (${units} base units); supply ${formatBly(state.supply)} BLY`
    )
  })

export const transfer = ({
  json,
  to,
  amount,
  nodeData,
  from
}: {
  readonly json: boolean
  readonly to: string
  readonly amount: string
  readonly nodeData: Option.Option<string>
  readonly from: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const units = parseBly(amount)
    if (units === undefined) return yield* fail(`--amount must be BLY in decimals, e.g. 0.5 (at most 18 decimals); got ${JSON.stringify(amount)}`, ExitCode.usage)
    if (Option.isSome(nodeData) !== Option.isSome(from)) return yield* fail("--node-data and --from go together: a node's key and its id", ExitCode.usage)
    const key = Option.isSome(nodeData) ? yield* localKey(nodeData.value, "node") : yield* ownKey
    const sender = Option.getOrElse(from, () => key.publicKey)
    const r = yield* handleCommand({
      stream: Streams.rewards,
      projection: WalletProjection,
      reads: "log",
      decide: (s) =>
        decideTransfer(s.balances, s.nodes, signTransfer({ from: sender, to, amount: units.toString(), nonce: (s.balances.nonces.get(sender) ?? 0) + 1 }, key.seed))
    })
    yield* emit(json, { from: sender, to, units: units.toString(), bly: formatBly(units), seq: r?.head.seq }, () => `sent ${formatBly(units)} BLY from ${sender} to ${to} (seq ${r?.head.seq})`)
  })
