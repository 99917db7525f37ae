import { createHash } from "node:crypto"
import { canonicalize } from "./jcs.ts"

/** Hex sha256; hashing is deterministic computation, not I/O, so the domain may use it. */
export const sha256Hex = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

export const hashCanonical = (value: unknown): string => sha256Hex(canonicalize(value))

export const ZERO_HASH = "0".repeat(64)

export const isHash = (s: string): boolean => /^[0-9a-f]{64}$/.test(s)
