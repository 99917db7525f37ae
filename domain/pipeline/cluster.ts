import { Schema } from "effect"

/**
 * A cluster description, as `blyan plan optimize --input` reads it: the layers' loads and the
 * devices. Layers may be left out where the ledger's model supplies them. Only the shape is
 * checked here; `checkPartitionInput` names wrong values.
 */
export const ClusterFile = Schema.Struct({
  layers: Schema.optional(Schema.Array(Schema.Struct({ cost: Schema.Number, memory: Schema.Number }))),
  devices: Schema.Array(Schema.Struct({ id: Schema.String, speed: Schema.Number, memory: Schema.Number }))
})
export type ClusterFile = typeof ClusterFile.Type
