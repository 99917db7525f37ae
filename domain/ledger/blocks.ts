import { Either, Schema } from "effect"
import { hashCanonical } from "./hash.ts"
import { signHex, verifyHex } from "./signing.ts"
import type { BlockAppendedData, BlockHeader } from "./events.ts"

/** Why a block may not join the DAG. */
export class BlockInvalid extends Schema.TaggedError<BlockInvalid>()("BlockInvalid", { block: Schema.String, message: Schema.String }) {
  static of({ block, reason }: { readonly block: string; readonly reason: string }): BlockInvalid {
    return new BlockInvalid({ block, message: `block ${block}: ${reason}` })
  }
}

export const blockHash = (header: BlockHeader): string => hashCanonical(header)

export const headerOf = (b: BlockAppendedData): BlockHeader => ({
  name: b.name,
  kind: b.kind,
  payload: b.payload,
  size: b.size,
  dtype: b.dtype,
  tensors: b.tensors,
  dependsOn: b.dependsOn,
  contributor: b.contributor
})

/** Seal a header into a block signed by the contributor whose key seed is given. */
export const signBlock = (header: BlockHeader, contributorSeed: string): BlockAppendedData => {
  const hash = blockHash(header)
  return { ...header, hash, signature: signHex(contributorSeed, hash) }
}

/** What is known of the payload blob when a block is checked; audit and the appender look it up. */
export type PayloadFact = { readonly sha256: string; readonly size: number } | "missing"

/**
 * A block joins the DAG only if its hash is its header's, its contributor signed it, every
 * dependency is already known (so there can be no cycle), and its payload blob is as stated.
 * Every known node descends from the genesis covenant, so depending on known nodes anchors it.
 */
export const checkBlock = (
  known: (hash: string) => boolean,
  block: BlockAppendedData,
  payload: PayloadFact | undefined
): Either.Either<void, BlockInvalid> => {
  const fail = (reason: string) => Either.left(BlockInvalid.of({ block: block.name, reason }))
  if (blockHash(headerOf(block)) !== block.hash) return fail("hash does not match its header")
  if (known(block.hash)) return fail("already on the ledger")
  if (!verifyHex(block.contributor, block.hash, block.signature)) return fail("contributor signature does not verify")
  if (new Set(block.dependsOn).size !== block.dependsOn.length) return fail("depends on the same block twice")
  const unknown = block.dependsOn.find((h) => !known(h))
  if (unknown !== undefined) return fail(`depends on unknown block ${unknown}`)
  if (payload === "missing") return fail(`payload blob ${block.payload} is missing`)
  if (payload !== undefined) {
    if (payload.sha256 !== block.payload) return fail(`payload blob hashes to ${payload.sha256}, not ${block.payload}`)
    if (payload.size !== block.size) return fail(`payload is ${payload.size} bytes, not ${block.size}`)
  }
  return Either.right(undefined)
}
