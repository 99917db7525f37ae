/** Stream names are part of the log format: this is their only home. */
export const Streams = {
  chainA: "chain-A",
  chainB: "chain-B",
  expert: (layer: number, expert: number) => `expert-${layer}.${expert}`,
  round: (id: string) => `round-${id}`,
  node: (id: string) => `node-${id}`,
  rewards: "rewards",
  inference: "inference",
  epoch: (id: string) => `epoch-${id}`,
  keys: "keys",
  /** A witness's own log: the forks it saw. */
  witness: "witness"
} as const

/** The kinds of stream: each event type is bound to the kinds it may appear in. */
export type StreamKind = "chain-A" | "chain-B" | "expert" | "round" | "node" | "rewards" | "inference" | "epoch" | "keys" | "witness"

const STREAM_NAME = /^(?:(chain-A|chain-B|rewards|inference|keys|witness)|(expert)-\d{1,6}\.\d{1,6}|(round|node|epoch)-[A-Za-z0-9_.:-]{1,128})$/

/** Kinds whose streams are a family (`expert-0.1`, `node-n1`…) rather than one fixed name. */
const FAMILIES: ReadonlySet<StreamKind> = new Set(["expert", "round", "node", "epoch"])

/** A kind as people read it: the fixed name, or the family's pattern (`node-*`). */
export const describeStreamKind = (kind: StreamKind): string => (FAMILIES.has(kind) ? `${kind}-*` : kind)

/** The kind of a stream name, or undefined when the name is not one the log may hold. */
export const streamKind = (name: string): StreamKind | undefined => {
  const m = STREAM_NAME.exec(name)
  return m ? ((m[1] ?? m[2] ?? m[3]) as StreamKind) : undefined
}

export const isValidStreamName = (name: string): boolean => streamKind(name) !== undefined
