/**
 * Experts over the bus, of any model (a request names each expert's block). A node's side:
 * `serveExpert` answers forward requests for one block it holds as a member of the block's queue
 * group (replicas share the load); `serveLayer` answers requests addressed to the node for any of
 * the experts of a layer it holds now, several in one request. Each answer carries the output
 * rows and a signed receipt per expert. The router's side, `callExperts`: it asks a node (or
 * whichever replica of one expert answers) and accepts the answer only if every output is
 * well-shaped and finite and carries a receipt the answering node's registered key signed for
 * exactly its request, block, input and output.
 */
import { Effect, Either, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import type { Executor } from "../domain/ports/executor.ts"
import type { ExpertForward } from "../domain/model/expert-models.ts"
import { expertPart } from "../domain/model/spec.ts"
import {
  decodeExpertAnswer,
  decodeExpertRequest,
  encodeExpertAnswer,
  encodeExpertRefusal,
  encodeExpertRequest,
  rowBytes,
  rowsOf,
  splitRows,
  type ExpertItem
} from "../domain/network/expert-wire.ts"
import { bytesDigest, receiptProblem, signReceipt, type Receipt } from "../domain/network/receipts.ts"
import { expertQueue, Subjects } from "../domain/network/subjects.ts"

/** The most rows one request may carry: a context's worth of tokens for a batch of 64. */
export const MAX_ROWS = 64 * 1024

export type HostedExpert = {
  readonly layer: number
  readonly expert: number
  /** The block hash of the weights held. */
  readonly block: string
  /** Floats per row in and out. */
  readonly width: number
  readonly forward: ExpertForward
}

/** What a node holds at the moment it is asked: the hosted expert by block hash (a hot-swap changes it). */
export type Holding = (block: string) => HostedExpert | undefined

export type NodeIdentity = { readonly node: string; readonly seed: string }

/** A node's load, counted in experts asked across its requests: what its heartbeats report. */
export type ServiceLoad = { queue: number; served: number }

const rowsText = (items: ReadonlyArray<{ readonly rows: number }>) => items.map((i) => i.rows).join("+")

/** The answer to a forward request for experts of `layer`, from what `holding` says the node holds. */
const answerFrom = (layer: number, holding: Holding, identity: NodeIdentity) => (data: Uint8Array) =>
  Effect.gen(function* () {
    const req = decodeExpertRequest(data)
    if (Either.isLeft(req)) return encodeExpertRefusal(req.left.message)
    const { items, body } = req.right
    const held: HostedExpert[] = []
    for (const item of items) {
      const h = holding(item.block)
      if (h === undefined || h.layer !== layer || h.expert !== item.expert) return encodeExpertRefusal(`this node does not serve block ${item.block} as ${expertPart(layer, item.expert)}`)
      held.push(h)
    }
    const total = items.reduce((n, i) => n + i.rows, 0)
    if (total > MAX_ROWS) return encodeExpertRefusal(`${total} rows exceed the ${MAX_ROWS} a request may carry`)
    const width = held[0]!.width
    if (held.some((h) => h.width !== width)) return encodeExpertRefusal("a request asks for experts of one model")
    const inputs = splitRows(body, items, width)
    const xs = inputs?.map((input, i) => rowsOf(input, items[i]!.rows, width))
    if (inputs === undefined || xs === undefined || xs.some((x) => x === undefined)) return encodeExpertRefusal(`the input is not ${rowsText(items)} finite rows of ${width} float32`)
    const receipts: Receipt[] = []
    const outputs: Uint8Array[] = []
    for (let i = 0; i < items.length; i++) {
      const { requestId, expert, block, rows } = items[i]!
      const part = expertPart(layer, expert)
      const output = rowBytes(yield* held[i]!.forward(xs[i]!, rows).pipe(Effect.mapError((e) => ({ message: `${part} failed: ${e.message}` }))))
      if (rowsOf(output, rows, width) === undefined) return encodeExpertRefusal(`${part} computed a non-finite output`)
      const claim = { requestId, node: identity.node, layer, expert, block, rows, inputDigest: bytesDigest(inputs[i]!), outputDigest: bytesDigest(output) }
      receipts.push(signReceipt(claim, identity.seed))
      outputs.push(output)
    }
    return encodeExpertAnswer(receipts, outputs)
  }).pipe(Effect.catchAll((e) => Effect.succeed(encodeExpertRefusal(e.message))))

/** Requests counted into `load` while they are answered: as many experts as each asks for. */
const counted = <R>(load: ServiceLoad, answer: (data: Uint8Array) => Effect.Effect<Uint8Array, never, R>) => (data: Uint8Array) => {
  const asked = Either.match(decodeExpertRequest(data), { onLeft: () => 1, onRight: (r) => r.items.length })
  return Effect.acquireUseRelease(
    Effect.sync(() => (load.queue += asked)),
    () => answer(data),
    () => Effect.sync(() => ((load.queue -= asked), (load.served += asked)))
  )
}

/** Answer forward requests for `hosted` in its block's queue group until the scope closes. */
export const serveExpert = (hosted: HostedExpert, identity: NodeIdentity, load: ServiceLoad = { queue: 0, served: 0 }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const context = yield* Effect.context<Executor>()
    const answer = counted(load, answerFrom(hosted.layer, (b) => (b === hosted.block ? hosted : undefined), identity))
    yield* bus.serve(Subjects.expertForward(hosted.block), (request) => Effect.provide(answer(request.data), context), { queue: expertQueue(hosted.block) })
  })

/** Answer forward requests addressed to this node for experts of `layer`, from `holding`, until the scope closes. */
export const serveLayer = (layer: number, holding: Holding, identity: NodeIdentity, load: ServiceLoad = { queue: 0, served: 0 }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const context = yield* Effect.context<Executor>()
    const answer = counted(load, answerFrom(layer, holding, identity))
    yield* bus.serve(Subjects.expertsOn(layer, identity.node), (request) => Effect.provide(answer(request.data), context))
  })

/** An expert answer the router does not accept, and why; `node` is who sent it, where known. */
export class ExpertAnswerRefused extends Schema.TaggedError<ExpertAnswerRefused>()("ExpertAnswerRefused", {
  layer: Schema.Number,
  expert: Schema.Number,
  node: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/** One expert of a call: its request id, the block expected and `rows` rows of input x ([rows, dModel]). */
export type ExpertAsk = Omit<ExpertItem, "rows"> & { readonly rows: number; readonly x: ArrayLike<number> }

export type ExpertsCall = {
  readonly layer: number
  readonly items: ReadonlyArray<ExpertAsk>
  readonly width: number
  readonly timeoutMs: number
  /** The registered public key of a node, if it is registered and not banned. */
  readonly publicKeyOf: (node: string) => string | undefined
  /** Ask this node; without one, the call is for one expert, whichever replica of its block's queue group picks. */
  readonly node?: string
}

export type ExpertAnswer = { readonly y: Float32Array; readonly receipt: Receipt }

/** The outputs of `call.items`, in order, each with the receipt of the node that computed it. */
export const callExperts = (call: ExpertsCall) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const { layer, items } = call
    const refuse = (message: string, node = call.node) => new ExpertAnswerRefused({ layer, expert: items[0]!.expert, message, ...(node === undefined ? {} : { node }) })
    if (items.length === 0) return []
    if (call.node === undefined && items.length > 1) return yield* refuse("a call to a queue group asks for one expert")
    const inputs = items.map((i) => rowBytes(i.x))
    const subject = call.node === undefined ? Subjects.expertForward(items[0]!.block) : Subjects.expertsOn(layer, call.node)
    const header = items.map(({ requestId, expert, block, rows }) => ({ requestId, expert, block, rows }))
    const data = yield* bus.request(subject, encodeExpertRequest(header, inputs), { timeoutMs: call.timeoutMs })
    const { receipts, body } = yield* Either.mapLeft(decodeExpertAnswer(data), (e) => refuse(e.message))
    const node = receipts[0]?.node
    if (node === undefined || receipts.length !== items.length) return yield* refuse(`the answer carries ${receipts.length} receipts for ${items.length} experts`, node)
    if (call.node !== undefined && node !== call.node) return yield* refuse(`node ${call.node} answered with a receipt of ${node}`)
    if (receipts.some((r) => r.node !== node)) return yield* refuse(`node ${node} answered with receipts of other nodes`, node)
    const outputs = splitRows(body, items, call.width)
    if (outputs === undefined) return yield* refuse(`the output is not ${rowsText(items)} finite rows of ${call.width} float32`, node)
    const publicKey = call.publicKeyOf(node)
    if (publicKey === undefined) return yield* refuse(`node ${node} is not a registered, active node`, node)
    const answers: ExpertAnswer[] = []
    for (let i = 0; i < items.length; i++) {
      const { requestId, expert, block, rows } = items[i]!
      const y = rowsOf(outputs[i]!, rows, call.width)
      if (y === undefined) return yield* refuse(`the output is not ${rows} finite rows of ${call.width} float32`, node)
      const expected = { requestId, node, layer, expert, block, rows, inputDigest: bytesDigest(inputs[i]!), outputDigest: bytesDigest(outputs[i]!) }
      const problem = receiptProblem(receipts[i]!, publicKey, expected)
      if (problem !== undefined) return yield* refuse(problem, node)
      answers.push({ y, receipt: receipts[i]! })
    }
    return answers
  })

export type ExpertCall = Omit<ExpertsCall, "items"> & ExpertAsk

/** One expert's output for `call.x`, with the receipt of the node that computed it. */
export const callExpert = ({ requestId, expert, block, rows, x, ...call }: ExpertCall) =>
  Effect.map(callExperts({ ...call, items: [{ requestId, expert, block, rows, x }] }), (answers) => answers[0]!)
