/**
 * The text an envelope's hash is the sha256 of: the canonical JSON (RFC 8785) of everything but
 * the hash, its keys written out in canonical order. Pure and free of Node, so the explorer's page
 * re-derives every hash in the browser from the same definition the store uses.
 */
import { canonicalize } from "./jcs.ts"

export type HashedFields = { readonly seq: number; readonly stream: string; readonly type: string; readonly version: number; readonly at: string; readonly prev: string }

/** The text to hash, given the canonical JSON of `data` (undefined when the envelope has none). */
export const envelopeHashInput = (e: HashedFields, canonicalData: string | undefined): string =>
  `{"at":${canonicalize(e.at)},${canonicalData === undefined ? "" : `"data":${canonicalData},`}"prev":${canonicalize(e.prev)},"seq":${canonicalize(e.seq)},"stream":${canonicalize(e.stream)},"type":${canonicalize(e.type)},"version":${canonicalize(e.version)}}`
