import { Schema } from "effect"

/**
 * A cluster description, as `blyan plan optimize --input` reads it: the layers' loads and the
 * devices, with their links (bytes/s) and the bytes crossing a stage boundary each way when
 * communication is to be counted (in units consistent with the costs and speeds). Layers may be
 * left out where the ledger's model supplies them. Only the shape is checked here;
 * `checkPartitionInput` names wrong values.
 */
export const ClusterFile = Schema.Struct({
  layers: Schema.optional(Schema.Array(Schema.Struct({ cost: Schema.Number, memory: Schema.Number }))),
  devices: Schema.Array(Schema.Struct({ id: Schema.String, speed: Schema.Number, memory: Schema.Number, bandwidth: Schema.optional(Schema.Number) })),
  boundaryBytes: Schema.optional(Schema.Number)
})
export type ClusterFile = typeof ClusterFile.Type
