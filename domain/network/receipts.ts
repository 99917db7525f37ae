/**
 * A node's receipt for one expert answer: its ed25519 signature over what it was asked and what
 * it answered (request id, layer, expert, block hash, rows, sha256 of the input bytes and of the
 * output bytes). Whoever holds the receipt and the node's registered public key can check that this node
 * produced this output from this input with this block; a receipt for other bytes, another block
 * or another request does not verify.
 */
import { Schema } from "effect"
import { canonicalize } from "../ledger/jcs.ts"
import { sha256Hex } from "../ledger/hash.ts"
import { signHex, verifyHex } from "../ledger/signing.ts"

const Hash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
const Index = Schema.Int.pipe(Schema.nonNegative())

export const ReceiptClaim = Schema.Struct({
  requestId: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  node: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  layer: Index,
  expert: Index,
  block: Hash,
  /** Tokens (rows) computed: what the node is paid for. */
  rows: Schema.Int.pipe(Schema.positive()),
  inputDigest: Hash,
  outputDigest: Hash
})
export type ReceiptClaim = typeof ReceiptClaim.Type

export const Receipt = Schema.Struct({ ...ReceiptClaim.fields, signature: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{128}$/)) })
export type Receipt = typeof Receipt.Type

const claimHex = (c: ReceiptClaim) =>
  Buffer.from(
    canonicalize({ requestId: c.requestId, node: c.node, layer: c.layer, expert: c.expert, block: c.block, rows: c.rows, inputDigest: c.inputDigest, outputDigest: c.outputDigest }),
    "utf8"
  ).toString("hex")

/** The digest a receipt names for a tensor's bytes. */
export const bytesDigest = (bytes: Uint8Array): string => sha256Hex(bytes)

export const signReceipt = (claim: ReceiptClaim, seedHex: string): Receipt => ({ ...claim, signature: signHex(seedHex, claimHex(claim)) })

/**
 * Why `receipt` is not the node's receipt for `expected` (the request as the caller made it and
 * the bytes it got back), if it is not.
 */
export const receiptProblem = (receipt: Receipt, publicKeyHex: string, expected: ReceiptClaim): string | undefined => {
  for (const k of ["requestId", "node", "layer", "expert", "block", "rows", "inputDigest", "outputDigest"] as const)
    if (receipt[k] !== expected[k]) return `the receipt names ${k} ${String(receipt[k]).slice(0, 16)}, not ${String(expected[k]).slice(0, 16)}`
  return receiptSigned(receipt, publicKeyHex) ? undefined : "the receipt's signature is not the node's"
}

/** Whether `receipt` is signed by the key `publicKeyHex` over exactly what it claims. */
export const receiptSigned = (receipt: Receipt, publicKeyHex: string): boolean => verifyHex(publicKeyHex, claimHex(receipt), receipt.signature)

export const decodeReceipt = Schema.decodeUnknownEither(Receipt, { onExcessProperty: "error" })
