/**
 * The heads witnesses co-signed, gathered for `blyan audit --witness`: from a file of notes (a
 * witness's `tree-heads.jsonl`, or one note as `blyan proof head` prints it) or from the
 * witnesses answering a poll on a NATS bus. A note counts when a witness's signature on it
 * verifies: naming a witness is trusting its word that the ledger signed that head.
 */
import { Effect, Either } from "effect"
import { pollWitnesses } from "../../actors/witness.ts"
import { makeNatsBus } from "../../adapters/bus/nats.ts"
import { notesOfLines } from "../../adapters/tree-heads/file.ts"
import { Bus } from "../../domain/ports/bus.ts"
import { openTreeHead, witnessesOf, witnessKeyName, type TreeHead } from "../../domain/ledger/tree-head.ts"
import { parseNatsBus } from "../ledger.ts"
import { networkTimings } from "../network-settings.ts"
import { readText } from "./files.ts"
import { ExitCode, fail } from "./output.ts"

/** A witness's `tree-heads.jsonl`, or a single note as it is printed. */
const notesOfFile = (text: string): ReadonlyArray<string> => {
  const lines = notesOfLines(text)
  return lines.length > 0 ? lines : [text]
}

const notesOf = (source: string) =>
  source.startsWith("nats://")
    ? Effect.gen(function* () {
        const servers = parseNatsBus(source)
        if (Either.isLeft(servers)) return yield* fail(`--witness: ${servers.left}`, ExitCode.usage)
        const bus = yield* makeNatsBus(servers.right).pipe(Effect.catchTag("BusFailure", (e) => fail(`--witness ${source}: ${e.message}`, ExitCode.unavailable)))
        return (yield* pollWitnesses((yield* networkTimings).witnessWaitMs).pipe(Effect.provideService(Bus, bus))).map((a) => a.note)
      }).pipe(Effect.scoped)
    : Effect.map(readText(source), notesOfFile)

/**
 * The witnessed heads of the ledger whose origins are `origins` (any, when none is known here),
 * each with the witnesses that signed it; and how many notes were set aside.
 */
export const witnessedHeads = (sources: ReadonlyArray<string>, origins: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const heads: Array<TreeHead & { readonly signer: string }> = []
    const witnesses = new Set<string>()
    let setAside = 0
    for (const note of (yield* Effect.forEach(sources, notesOf)).flat()) {
      const by = witnessesOf(note)
      const opened = by.length === 0 ? undefined : openTreeHead(note, [{ name: witnessKeyName(by[0]!), publicKey: by[0]! }])
      if (opened === undefined || Either.isLeft(opened) || (origins.length > 0 && !origins.includes(opened.right.origin))) {
        setAside++
        continue
      }
      for (const w of by) witnesses.add(w)
      heads.push({ ...opened.right, signer: `${opened.right.origin} (witnessed by ${by.map((w) => w.slice(0, 16)).join(", ")})` })
    }
    return { heads, witnesses: witnesses.size, setAside }
  })
