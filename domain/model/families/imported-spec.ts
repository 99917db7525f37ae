/**
 * An imported open MoE model as the ledger publishes it (`ModelSpecPublished`): its family spec,
 * the name it is known by, and the blobs of the files it came with (`config.json`, the tokenizer's)
 * by file name, so that chat can tokenize and export can write them back byte for byte. Its
 * blocks are named `<name>/<part>`, apart from the built-in model's parts.
 */
import { Schema } from "effect"
import { FamilySpec } from "./config.ts"

const Hash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))

/** A model's name: one path-free token, since it prefixes its blocks' names. */
export const ModelName = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/))

export const ImportedSpec = Schema.Struct({ ...FamilySpec.fields, name: ModelName, files: Schema.Record({ key: Schema.String, value: Hash }) })
export type ImportedSpec = typeof ImportedSpec.Type

/** The built-in model's name where a command names a model; no import may take it. */
export const BUILTIN_MODEL = "blyan-moe"

/** The block name of an imported model's part. */
export const importedPart = (model: string, part: string) => `${model}/${part}`

/** The model and part of an imported block's name, or undefined for the built-in model's. */
export const splitImportedPart = (name: string): { readonly model: string; readonly part: string } | undefined => {
  const at = name.indexOf("/")
  return at < 0 ? undefined : { model: name.slice(0, at), part: name.slice(at + 1) }
}
