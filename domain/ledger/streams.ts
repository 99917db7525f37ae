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
  keys: "keys"
} as const

const STREAM_NAME = /^(chain-A|chain-B|rewards|inference|keys|expert-\d+\.\d+|(round|node|epoch)-[A-Za-z0-9_.:-]{1,128})$/

export const isValidStreamName = (name: string): boolean => STREAM_NAME.test(name)
