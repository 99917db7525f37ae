/**
 * A checkpoint to import, read in place (see `adapters/checkpoint/hf-directory.ts` for the Hugging
 * Face layout): its raw `config.json`, every tensor's stored dtype and shape, each tensor's stored
 * bytes on demand, and its tokenizer files.
 */
import { Schema, type Effect } from "effect"
import type { StDType } from "../model/safetensors.ts"
import type { FamilySpec } from "../model/families/config.ts"

/** A checkpoint (a directory or one of its files) that cannot be used; the message names the file and tensor. */
export class CheckpointRefused extends Schema.TaggedError<CheckpointRefused>()("CheckpointRefused", {
  message: Schema.String,
  file: Schema.optional(Schema.String),
  tensor: Schema.optional(Schema.String)
}) {}

export const refused = (message: string, file?: string, tensor?: string): CheckpointRefused =>
  new CheckpointRefused({
    message,
    ...(file === undefined ? {} : { file }),
    ...(tensor === undefined ? {} : { tensor })
  })

export interface StoredTensorInfo {
  readonly dtype: StDType
  readonly shape: ReadonlyArray<number>
  /** Its stored size. */
  readonly bytes: number
}

export interface CheckpointSource {
  /** `config.json` parsed but not decoded: its schema depends on the architecture. */
  readonly config: unknown
  /** The files that come with the weights (`config.json`, the tokenizer's), by name, byte for byte: kept to be written back on export. */
  readonly files: Readonly<Record<string, Uint8Array>>
  readonly tensors: ReadonlyMap<string, StoredTensorInfo>
  /** The sum of the tensors' stored bytes. */
  readonly totalBytes: number
  /** The raw bytes of `tokenizer.json` and `tokenizer_config.json`, when present. */
  readonly tokenizer: Uint8Array | undefined
  readonly tokenizerConfig: Uint8Array | undefined
  /** One tensor's stored bytes (little-endian, its dtype) read straight into `into`, which is exactly their size: a block is filled in place. */
  readonly readInto: (name: string, into: Uint8Array) => Effect.Effect<void, CheckpointRefused>
}

/** A model's parts as an export reads them: its spec, the files it came with, and each part's block payload by part name. */
export type ModelParts<E> = {
  readonly spec: FamilySpec
  /** `config.json` and the tokenizer's files, byte for byte as imported. */
  readonly files: Readonly<Record<string, Uint8Array>>
  readonly part: (name: string) => Effect.Effect<Uint8Array, E>
}
