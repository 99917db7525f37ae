import { randomBytes } from "node:crypto"
import type { NodeAgentConfig } from "../../actors/node-agent.ts"

/** A node agent's settings in tests: a fresh key, every expert of the latest model, quick heartbeats, each status it enters kept in `statuses`. */
export const testNodeConfig = (node: string, apiKey: string, statuses: string[], over: Partial<NodeAgentConfig> = {}): NodeAgentConfig => ({
  node,
  apiKey,
  seed: randomBytes(32).toString("hex"),
  device: "cpu",
  memory: 1 << 30,
  models: "latest",
  experts: "all",
  timeoutMs: 2000,
  heartbeatMs: 50,
  watchMs: 50,
  onStatus: (s, why) => void statuses.push(why === undefined ? s : `${s}: ${why}`),
  ...over
})
