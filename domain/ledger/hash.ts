import * as crypto from "node:crypto"
import { canonicalize } from "./jcs.ts"

/**
 * Hex sha256; hashing is deterministic computation, not I/O, so the domain may use it. The
 * one-shot `crypto.hash` (Node 20.12+) costs about half of a Hash object for the short inputs
 * every envelope hashes; older Node 20 releases get the Hash object.
 */
export const sha256Hex: (bytes: Uint8Array | string) => string =
  typeof crypto.hash === "function"
    ? (bytes) => crypto.hash("sha256", bytes, "hex")
    : (bytes) => crypto.createHash("sha256").update(bytes).digest("hex")

export const hashCanonical = (value: unknown): string => sha256Hex(canonicalize(value))

export const ZERO_HASH = "0".repeat(64)

export const isHash = (s: string): boolean => /^[0-9a-f]{64}$/.test(s)
