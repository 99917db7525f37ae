/**
 * A witness: it follows one ledger's signed tree heads over the bus and co-signs each one shown
 * (by a consistency proof) to extend the last it co-signed. A head that cannot is a fork: it is
 * recorded on the witness's own log (`TreeHeadForked`, both notes as evidence), reported on the
 * bus, and never co-signed. The witness keeps the heads it co-signed beside its own log, and
 * hands the latest to whoever polls (see `pollWitnesses`).
 */
import { randomBytes } from "node:crypto"
import { Effect, Either, Option, Schedule, Schema, Stream } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import { EventStore } from "../domain/ports/event-store.ts"
import { TreeHeadStore } from "../domain/ports/tree-head-store.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { newEvent } from "../domain/ledger/events.ts"
import { Streams } from "../domain/ledger/streams.ts"
import type { KeyPair } from "../domain/ledger/signing.ts"
import { cosignTreeHead, ledgerKeyName, noteBody, openTreeHead, witnessKeyName } from "../domain/ledger/tree-head.ts"
import { judgeHead } from "../domain/ledger/witness.ts"
import { ensureGenesis } from "./genesis.ts"
import { askJson } from "./owner-requests.ts"
import { latestTrustedHead } from "./tree-heads.ts"
import { ConsistencyRequest } from "./tree-head-service.ts"
import { LogProof } from "./log-proofs.ts"

/** The ledger did not answer as a ledger should. */
export class LedgerUnanswered extends Schema.TaggedError<LedgerUnanswered>()("LedgerUnanswered", { message: Schema.String }) {}

export type WitnessSettings = {
  /** The witness's own key. */
  readonly key: KeyPair
  /** The public key of the ledger it follows: heads signed by any other key are not its ledger's. */
  readonly ledger: string
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly onStatus: (line: string) => void
}

const encoder = new TextEncoder()
const HeadAnswer = Schema.Struct({ note: Schema.String, publicKey: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)) })
const ConsistencyAnswer = Schema.Struct({ proof: LogProof })

/** Ask the ledger, and take its answer only in the shape `schema` says: a ledger is never trusted to be well formed. */
const askLedger = <A, I>(subject: string, body: unknown, schema: Schema.Schema<A, I>, timeoutMs: number) =>
  askJson<object, LedgerUnanswered>(subject, body, timeoutMs, (reason) => new LedgerUnanswered({ message: reason })).pipe(
    Effect.flatMap((answer) => Schema.decodeUnknown(schema)(answer)),
    Effect.mapError((e) => (e instanceof LedgerUnanswered ? e : new LedgerUnanswered({ message: `the answer on ${subject} is not one: ${e.message}` })))
  )

/** The ledger's latest signed head, and the public key it says signed it. */
export const askLedgerHead = (timeoutMs: number) => askLedger(Subjects.ledgerHead, {}, HeadAnswer, timeoutMs)

const PollRequest = Schema.Struct({ poll: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)) })

/** One look at the ledger's head: co-sign it, leave it (already co-signed), or report the fork once per head (signatures added later do not make it another). */
const witnessOnce = (s: WitnessSettings, reported: Set<string>) =>
  Effect.gen(function* () {
    const heads = yield* TreeHeadStore
    const offered = yield* askLedgerHead(s.timeoutMs)
    const ledger = [{ name: ledgerKeyName(s.ledger), publicKey: s.ledger }]
    const opened = openTreeHead(offered.note, ledger)
    if (Either.isLeft(opened)) return s.onStatus(`the head offered is not signed by the ledger key ${s.ledger}: ${opened.left}`)
    const head = opened.right
    const held = yield* latestTrustedHead([{ name: witnessKeyName(s.key.publicKey), publicKey: s.key.publicKey }])
    let judgement = judgeHead(held?.head, head)
    if (judgement.kind === "prove") {
      const { proof } = yield* askLedger(Subjects.ledgerConsistency, { from: judgement.from, to: judgement.to } satisfies typeof ConsistencyRequest.Type, ConsistencyAnswer, s.timeoutMs)
      judgement = judgeHead(held?.head, head, proof.kind === "consistency" && proof.from === judgement.from && proof.to === judgement.to ? proof.proof : ["not a proof of these sizes"])
    }
    if (judgement.kind === "same") return
    if (judgement.kind === "cosign") {
      const cosigned = cosignTreeHead(offered.note, witnessKeyName(s.key.publicKey), s.key.seed, s.key.publicKey)
      yield* heads.append(cosigned)
      s.onStatus(`co-signed the head of ${head.size} events, root ${head.root}`)
      // Handing it back is a courtesy: the witness's own copy is the evidence.
      yield* askJson(Subjects.ledgerCosigned, { note: cosigned }, s.timeoutMs, (reason) => new LedgerUnanswered({ message: reason })).pipe(
        Effect.catchAll((e) => Effect.sync(() => s.onStatus(`the ledger did not keep the co-signed head: ${e.message}`)))
      )
      return
    }
    if (judgement.kind !== "fork" || reported.has(noteBody(offered.note))) return
    const fork = { origin: held!.head.origin, ledger: s.ledger, witnessed: held!.note, offered: offered.note, reason: judgement.reason }
    yield* (yield* EventStore).append(Streams.witness, [newEvent("TreeHeadForked", fork)], "any")
    reported.add(noteBody(offered.note))
    s.onStatus(`FORK: ${judgement.reason}`)
    yield* (yield* Bus).publish(Subjects.witnessFork, encoder.encode(JSON.stringify({ witness: s.key.publicKey, ...fork })))
  })

/**
 * Witness the ledger until the scope closes, every `intervalMs`. Needs the bus, the witness's own
 * log (`EventStore`, given its genesis here) and its co-signed heads (`TreeHeadStore`).
 */
export const runWitness = (s: WitnessSettings) =>
  Effect.gen(function* () {
    yield* ensureGenesis
    const heads = yield* TreeHeadStore
    const bus = yield* Bus
    const witness = [{ name: witnessKeyName(s.key.publicKey), publicKey: s.key.publicKey }]
    // Forks already on its own log are not recorded again after a restart.
    const reported = new Set<string>()
    yield* Stream.runForEach((yield* EventStore).readAll(0), (e) =>
      Effect.sync(() => {
        if (e.type === "TreeHeadForked") reported.add(noteBody((e.data as { readonly offered: string }).offered))
      })
    )
    const decodePoll = Schema.decodeUnknownOption(Schema.parseJson(PollRequest))
    yield* Effect.forkScoped(
      Stream.runForEach(yield* bus.subscribe(Subjects.witnessPoll), (m) =>
        Option.match(decodePoll(new TextDecoder().decode(m.data)), {
          onNone: () => Effect.void,
          onSome: ({ poll }) =>
            Effect.flatMap(latestTrustedHead(witness), (latest) =>
              latest === undefined ? Effect.void : bus.publish(Subjects.witnessAnswers(poll), encoder.encode(JSON.stringify({ witness: s.key.publicKey, note: latest.note })))
            ).pipe(Effect.catchAll((e) => Effect.sync(() => s.onStatus(`a poll was not answered: ${e.message}`))))
        })
      )
    )
    yield* witnessOnce(s, reported).pipe(
      Effect.catchAll((e) => Effect.sync(() => s.onStatus(`no head witnessed this time: ${e.message}`))),
      Effect.repeat(Schedule.spaced(`${s.intervalMs} millis`)),
      Effect.provideService(TreeHeadStore, heads)
    )
  })

/**
 * Ask every witness on the bus for its latest co-signed head and collect what answers within
 * `waitMs`: the notes, each with the witness that sent it.
 */
export const pollWitnesses = (waitMs: number) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const poll = randomBytes(12).toString("hex")
    const answers = yield* bus.subscribe(Subjects.witnessAnswers(poll))
    const collected = yield* Effect.fork(Stream.runCollect(Stream.interruptWhen(answers, Effect.sleep(`${waitMs} millis`))))
    yield* bus.publish(Subjects.witnessPoll, encoder.encode(JSON.stringify({ poll })))
    const notes: Array<{ readonly witness: string; readonly note: string }> = []
    for (const m of yield* Effect.flatMap(collected.await, (exit) => exit)) {
      try {
        const a = JSON.parse(new TextDecoder().decode(m.data)) as { witness?: unknown; note?: unknown }
        if (typeof a.witness === "string" && typeof a.note === "string") notes.push({ witness: a.witness, note: a.note })
      } catch {
        // Not an answer: ignored, like any stranger's message.
      }
    }
    return notes
  }).pipe(Effect.scoped)
