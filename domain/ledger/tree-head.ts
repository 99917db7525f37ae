/**
 * Signed tree heads: "this log had `size` events and its Merkle tree (see `merkle.ts`) had this
 * root", signed. The text is the transparency-log checkpoint as a signed note (C2SP): the origin
 * (which log), the size in decimal and the root in base64 on their own lines, a blank line, then
 * one line per signature, `— <key name> <base64(4-byte key id ‖ 64-byte ed25519 signature)>`,
 * the key id being the first 4 bytes of sha256(name ‖ "\n" ‖ 0x01 ‖ public key). A head binds the
 * size to the root: a log cut short, or rewritten and re-chained, no longer matches it.
 */
import { createHash } from "node:crypto"
import { Either } from "effect"
import { signHex, verifyHex } from "./signing.ts"

export type TreeHead = { readonly origin: string; readonly size: number; readonly root: string }
export type TrustedKey = { readonly name: string; readonly publicKey: string }

/** The name a ledger's key signs its heads with, and the log's origin line. */
export const ledgerKeyName = (publicKey: string) => `blyan-ledger-${publicKey.slice(0, 16)}`

const keyId = (k: TrustedKey): Buffer =>
  createHash("sha256").update(Buffer.concat([Buffer.from(`${k.name}\n`, "utf8"), Buffer.of(1), Buffer.from(k.publicKey, "hex")])).digest().subarray(0, 4)

const body = (h: TreeHead) => `${h.origin}\n${h.size}\n${Buffer.from(h.root, "hex").toString("base64")}\n`

const signatureLine = (text: string, name: string, seed: string, publicKey: string) => {
  const signature = Buffer.from(signHex(seed, Buffer.from(text, "utf8").toString("hex")), "hex")
  return `— ${name} ${Buffer.concat([keyId({ name, publicKey }), signature]).toString("base64")}\n`
}

/** The head as a note signed by `name` with `seed`. */
export const signTreeHead = (h: TreeHead, name: string, seed: string, publicKey: string): string => {
  const text = body(h)
  return `${text}\n${signatureLine(text, name, seed, publicKey)}`
}

/**
 * A witness's key name carries its whole public key, so anyone holding a co-signed note can check
 * that signature; whether to trust that witness is theirs to decide.
 */
export const witnessKeyName = (publicKey: string) => `blyan-witness-${publicKey}`

/** `note` (already checked) with one more signature: a witness adding its own. */
export const cosignTreeHead = (note: string, name: string, seed: string, publicKey: string): string =>
  `${note}${signatureLine(noteBody(note), name, seed, publicKey)}`

/** The text of a note before its signatures: what every signature on it signs. */
export const noteBody = (note: string) => note.slice(0, note.indexOf("\n\n") + 1)

/** Two notes of the same head as one, with the signatures of both (each once, in order of first appearance). */
export const mergeNotes = (a: string, b: string): string => {
  const lines = (n: string) => n.slice(n.indexOf("\n\n") + 2).split("\n").filter((l) => l.length > 0)
  return `${noteBody(a)}\n${[...new Set([...lines(a), ...lines(b)])].map((l) => `${l}\n`).join("")}`
}

/** The public keys of the witnesses whose signatures on `note` verify. */
export const witnessesOf = (note: string): ReadonlyArray<string> =>
  [...note.matchAll(/^— blyan-witness-([0-9a-f]{64}) /gm)]
    .map((m) => m[1]!)
    .filter((publicKey) => Either.isRight(openTreeHead(note, [{ name: witnessKeyName(publicKey), publicKey }])))

const NAME = /^[^\s+]+$/
const B64 = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * The bytes of `text` if it is base64 in its one canonical spelling: a decoder ignores the unused
 * low bits of a last character, so without this a note would have several spellings of one signature.
 */
const canonicalBase64 = (text: string): Buffer | undefined => {
  if (!B64.test(text)) return undefined
  const bytes = Buffer.from(text, "base64")
  return bytes.toString("base64") === text ? bytes : undefined
}

/**
 * The head `note` states, if it is a well-formed note carrying a valid signature of one of
 * `trusted`; otherwise why not. Signatures of keys not trusted are ignored, as the format says.
 */
export const openTreeHead = (note: string, trusted: ReadonlyArray<TrustedKey>): Either.Either<TreeHead & { readonly signer: string }, string> => {
  const split = note.indexOf("\n\n")
  if (split < 0) return Either.left("not a signed note: no blank line before the signatures")
  const text = note.slice(0, split + 1)
  const lines = text.slice(0, -1).split("\n")
  if (lines.length < 3) return Either.left("not a tree head: it needs an origin, a size and a root")
  const [origin, sizeLine, rootLine] = lines as [string, string, string]
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeLine)) return Either.left(`not a tree size: ${JSON.stringify(sizeLine)}`)
  const root = canonicalBase64(rootLine)
  if (root === undefined || root.length !== 32) return Either.left("the root is not 32 bytes of base64")
  const head = { origin, size: Number(sizeLine), root: root.toString("hex") }
  const message = Buffer.from(text, "utf8").toString("hex")
  const signatures = note.slice(split + 2).split("\n").filter((l) => l.length > 0)
  for (const line of signatures) {
    const m = /^— (\S+) (\S+)$/.exec(line)
    const raw = m === null || !NAME.test(m[1]!) ? undefined : canonicalBase64(m[2]!)
    if (m === null || raw === undefined) return Either.left(`not a signature line: ${JSON.stringify(line.slice(0, 80))}`)
    for (const k of trusted) {
      if (k.name !== m[1] || raw.length !== 68 || !raw.subarray(0, 4).equals(keyId(k))) continue
      if (verifyHex(k.publicKey, message, raw.subarray(4).toString("hex"))) return Either.right({ ...head, signer: k.name })
      return Either.left(`the signature of ${k.name} does not verify`)
    }
  }
  return Either.left(`no signature of a trusted key (${trusted.map((k) => k.name).join(", ") || "none given"})`)
}
