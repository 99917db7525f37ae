/**
 * The bus's subjects: their only home (nothing spells one inline). A subject is dot-separated
 * tokens; an id put into one is a single token, so it cannot reach into another's subjects.
 */

/** One token of a subject: letters, digits, `_` and `-` (no dot, no wildcard, no space). */
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/

const token = (kind: string, value: string | number): string => {
  const s = String(value)
  if (!TOKEN.test(s)) throw new RangeError(`${kind} ${JSON.stringify(s)} cannot be a subject token (letters, digits, _ and - only)`)
  return s
}

export const Subjects = {
  /** A node's liveness and load. */
  nodeHeartbeat: (node: string) => `blyan.node.${token("node id", node)}.heartbeat`,
  /** A node's own echo, through which it measures its link to the bus before registering. */
  linkProbe: (node: string) => `blyan.node.${token("node id", node)}.probe`,
  /** Every node's heartbeats, for whoever tracks them all. */
  allHeartbeats: "blyan.node.*.heartbeat",
  /** Registration: request/reply with the API key and the node's ed25519 key. */
  nodeRegister: "blyan.node.register",
  /** A registered node's signed word on what it serves, or that it has retired (request/reply). */
  nodeAnnounce: "blyan.node.announce",
  /**
   * The forward pass of the expert whose current block is `block`, of whichever model (request/reply):
   * the nodes holding that block answer in one queue group.
   */
  expertForward: (block: string) => `blyan.expert.block.${token("block hash", block)}.forward`,
  /**
   * Forward passes of one or more experts of a layer on one named node (request/reply): how a
   * router picks the replica (load, spot-checks) and asks for a layer's experts in one round trip.
   */
  expertsOn: (layer: number, node: string) => `blyan.expert.${token("layer", layer)}.on.${token("node id", node)}`,
  /** Chat with the network's router (request/reply): a prompt in, the attributed answer out. */
  chat: "blyan.chat",
  /** A contribution to the network's round coordinator (request/reply): its signed block in, the round's decision out. */
  roundSubmit: "blyan.round.submit",
  /** The candidate's weights, served by the contributor while its round runs, by their content address. */
  contributionBlob: (payload: string) => `blyan.round.candidate.${token("payload hash", payload)}`,
  /** A validator joining, and staying joined (request/reply, repeated as its heartbeat). */
  validatorJoin: "blyan.validator.join",
  /** One validator's verdict on a contribution (request/reply). */
  validatorEvaluate: (publicKey: string) => `blyan.validator.${token("validator key", publicKey)}.evaluate`,
  /** One pipeline stage's activations or gradients for an epoch's round, and the coordinator's word to start (request/reply). */
  pipelineStage: (epoch: string, round: string, stage: number, kind: "act" | "grad" | "go") =>
    `blyan.pipeline.${token("epoch", epoch)}.${token("round", round)}.stage.${token("stage", stage)}.${kind}`,
  /** The stages' answers (ready, done with gradients, failed) to the coordinator of an epoch's round. */
  pipelineAnswers: (epoch: string, round: string) => `blyan.pipeline.${token("epoch", epoch)}.${token("round", round)}.answers`,
  /** Pipeline trainers' reports of each step, for whoever keeps metrics. */
  pipelineReports: "blyan.pipeline.reports",
  /** Work orders for a node's stage worker. */
  pipelineOrders: (node: string) => `blyan.pipeline.node.${token("node id", node)}.orders`,
  /** The log served to followers: catch-up reads (request/reply) and live envelopes. */
  ledgerRead: "blyan.ledger.read",
  ledgerLive: "blyan.ledger.live",
  /** Blobs (block payloads) served by content address, a chunk per request/reply. */
  blobRead: "blyan.blob.read",
  /** The ledger's latest signed tree head (request/reply), a consistency proof between two sizes, and heads witnesses co-signed, handed back. */
  ledgerHead: "blyan.ledger.head",
  ledgerConsistency: "blyan.ledger.consistency",
  ledgerCosigned: "blyan.ledger.cosigned",
  /** Inclusion proofs of blocks against the latest signed head (request/reply). */
  ledgerProveBlocks: "blyan.ledger.prove-blocks",
  /** A witness's report of a fork, with both heads as evidence. */
  witnessFork: "blyan.witness.fork",
  /** Asks every witness for its latest co-signed head, answered on the subject the asker names. */
  witnessPoll: "blyan.witness.poll",
  /** Where one poll's answers go: a subject of the asker's own. */
  witnessAnswers: (poll: string) => `blyan.witness.answers.${token("poll id", poll)}`
} as const

/** The queue group of a block's replicas: each forward request goes to one of them. */
export const expertQueue = (block: string) => `expert-${token("block hash", block)}`

/**
 * Why `subject` is not one the bus carries, if it is not. A pattern (`wildcards`) may use `*` for
 * one token and `>` for the rest as its last token; a subject to publish to may not.
 */
export const subjectProblem = (subject: string, wildcards: boolean): string | undefined => {
  if (subject.length === 0) return "empty"
  if (/[\s\u0000-\u001f]/.test(subject)) return "contains whitespace or a control character"
  const tokens = subject.split(".")
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.length === 0) return "has an empty token"
    if (t === "*" || t === ">") {
      if (!wildcards) return "has a wildcard; messages go to concrete subjects"
      if (t === ">" && i !== tokens.length - 1) return "`>` must be the last token"
    } else if (t.includes("*") || t.includes(">")) return "has a wildcard inside a token"
  }
  return undefined
}

/** Whether `subject` (concrete) is one that `pattern` subscribes to. */
export const subjectMatches = (pattern: string, subject: string): boolean => {
  const p = pattern.split(".")
  const s = subject.split(".")
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i
    if (i >= s.length) return false
    if (p[i] !== "*" && p[i] !== s[i]) return false
  }
  return p.length === s.length
}
