/**
 * Experts over the bus. `serveExpert` is a node's side: it answers forward requests for one
 * expert it holds, as a member of the expert's queue group (replicas share the load), with the
 * output rows and its signed receipt. `callExpert` is the router's side: it asks whichever
 * replica answers and accepts the answer only if it is well-shaped, finite, and carries a receipt
 * the answering node's registered key signed for exactly this request, block, input and output.
 */
import { Effect, Either, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"
import type { Executor } from "../domain/ports/executor.ts"
import { expertForward } from "../domain/model/forward.ts"
import type { ModelGraphs } from "../domain/model/onnx/graphs.ts"
import { expertPart } from "../domain/model/spec.ts"
import type { ModelWeights } from "../domain/model/tensor.ts"
import { decodeExpertAnswer, decodeExpertRequest, encodeExpertAnswer, encodeExpertRefusal, encodeExpertRequest, rowBytes, rowsOf } from "../domain/network/expert-wire.ts"
import { bytesDigest, receiptProblem, signReceipt, type Receipt } from "../domain/network/receipts.ts"
import { expertQueue, Subjects } from "../domain/network/subjects.ts"

/** The most rows one request may carry: a context's worth of tokens for a batch of 64. */
export const MAX_ROWS = 64 * 1024

export type HostedExpert = {
  readonly layer: number
  readonly expert: number
  /** The block hash of the weights held. */
  readonly block: string
  readonly graphs: ModelGraphs
  readonly weights: ModelWeights
}

export type NodeIdentity = { readonly node: string; readonly seed: string }

/** A node's load, counted across its experts: what its heartbeats report. */
export type ServiceLoad = { queue: number; served: number }

/**
 * Answer forward requests for `hosted` until the scope closes: those for any replica (the
 * expert's queue group) and those addressed to this node.
 */
export const serveExpert = (hosted: HostedExpert, identity: NodeIdentity, load: ServiceLoad = { queue: 0, served: 0 }) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const context = yield* Effect.context<Executor>()
    const { layer, expert, block, graphs, weights } = hosted
    const width = graphs.spec.dModel
    const part = expertPart(layer, expert)
    const answer = (data: Uint8Array) =>
      Effect.gen(function* () {
        const req = decodeExpertRequest(data)
        if (Either.isLeft(req)) return encodeExpertRefusal(req.left.message)
        const { header, input } = req.right
        if (header.block !== block) return encodeExpertRefusal(`this node holds block ${block} of ${part}, not ${header.block}`)
        if (header.rows > MAX_ROWS) return encodeExpertRefusal(`${header.rows} rows exceed the ${MAX_ROWS} a request may carry`)
        const x = rowsOf(input, header.rows, width)
        if (x === undefined) return encodeExpertRefusal(`the input is not ${header.rows} finite rows of ${width} float32`)
        const output = rowBytes(yield* expertForward(graphs, weights, part, x, header.rows))
        if (rowsOf(output, header.rows, width) === undefined) return encodeExpertRefusal(`${part} computed a non-finite output`)
        const claim = { requestId: header.requestId, node: identity.node, layer, expert, block, rows: header.rows, inputDigest: bytesDigest(input), outputDigest: bytesDigest(output) }
        return encodeExpertAnswer(signReceipt(claim, identity.seed), output)
      }).pipe(
        Effect.catchAll((e) => Effect.succeed(encodeExpertRefusal(`${part} failed: ${e.message}`))),
        Effect.provide(context)
      )
    const counted = (data: Uint8Array) =>
      Effect.acquireUseRelease(
        Effect.sync(() => load.queue++),
        () => answer(data),
        () => Effect.sync(() => (load.queue--, load.served++))
      )
    yield* bus.serve(Subjects.expertForward(layer, expert), (request) => counted(request.data), { queue: expertQueue(layer, expert) })
    yield* bus.serve(Subjects.expertForwardOn(layer, expert, identity.node), (request) => counted(request.data))
  })

/** An expert answer the router does not accept, and why; `node` is who sent it, where known. */
export class ExpertAnswerRefused extends Schema.TaggedError<ExpertAnswerRefused>()("ExpertAnswerRefused", {
  layer: Schema.Number,
  expert: Schema.Number,
  node: Schema.optional(Schema.String),
  message: Schema.String
}) {}

export type ExpertCall = {
  readonly requestId: string
  readonly layer: number
  readonly expert: number
  readonly block: string
  readonly rows: number
  /** [rows, dModel] */
  readonly x: ArrayLike<number>
  readonly width: number
  readonly timeoutMs: number
  /** The registered public key of a node, if it is registered and not banned. */
  readonly publicKeyOf: (node: string) => string | undefined
  /** Ask this node alone; by default, whichever replica the queue group picks. */
  readonly node?: string
}

/** One expert's output for `call.x`, with the receipt of the node that computed it. */
export const callExpert = (call: ExpertCall) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const { layer, expert } = call
    const refuse = (message: string, node = call.node) => new ExpertAnswerRefused({ layer, expert, message, ...(node === undefined ? {} : { node }) })
    const input = rowBytes(call.x)
    const subject = call.node === undefined ? Subjects.expertForward(layer, expert) : Subjects.expertForwardOn(layer, expert, call.node)
    const data = yield* bus.request(subject, encodeExpertRequest({ requestId: call.requestId, block: call.block, rows: call.rows }, input), { timeoutMs: call.timeoutMs })
    const answer = yield* Either.mapLeft(decodeExpertAnswer(data), (e) => refuse(e.message))
    const { receipt, output } = answer
    if (call.node !== undefined && receipt.node !== call.node) return yield* refuse(`node ${call.node} answered with a receipt of ${receipt.node}`)
    const y = rowsOf(output, call.rows, call.width)
    if (y === undefined) return yield* refuse(`the output is not ${call.rows} finite rows of ${call.width} float32`, receipt.node)
    const publicKey = call.publicKeyOf(receipt.node)
    if (publicKey === undefined) return yield* refuse(`node ${receipt.node} is not a registered, active node`, receipt.node)
    const expected = { requestId: call.requestId, node: receipt.node, layer, expert, block: call.block, rows: call.rows, inputDigest: bytesDigest(input), outputDigest: bytesDigest(output) }
    const problem = receiptProblem(receipt, publicKey, expected)
    if (problem !== undefined) return yield* refuse(problem, receipt.node)
    return { y, receipt } as { readonly y: Float32Array; readonly receipt: Receipt }
  })
