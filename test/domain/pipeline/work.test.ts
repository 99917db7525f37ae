import { Either } from "effect"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { decodeAnswer, decodeOrder, decodeTensor, encodeAnswer, encodeOrder, encodeTensor, type MalformedWork, type StageOrder } from "../../../domain/pipeline/work.ts"
import { noTransport } from "../../../domain/pipeline/step-report.ts"
import { randomWeights, tinySpec } from "../model/support.ts"

const weights = randomWeights(tinySpec, 5)
const order: StageOrder = {
  attempt: "a1",
  epoch: "e1",
  round: "r1-a1",
  stage: 1,
  stages: [
    { start: 0, end: 0 },
    { start: 1, end: 1 }
  ],
  nodes: ["n0", "n1"],
  spec: tinySpec,
  precision: "f32",
  deadlineMs: 1000,
  microbatches: [{ batch: 1, seq: 2, targets: [3, 4], weights: [0.5, 0.5] }],
  weights
}

const floatArrays = fc.array(
  fc.oneof(
    fc.float32Array({ maxLength: 40, noDefaultInfinity: true, noNaN: true }),
    fc.float64Array({ maxLength: 40, noDefaultInfinity: true, noNaN: true })
  ),
  { minLength: 1, maxLength: 4 }
)

describe("the pipeline's work messages", () => {
  it("a work order reads back as sent: its header and every weight tensor, storage dtype, shape and values", () => {
    const back = Either.getOrThrow(decodeOrder(encodeOrder(order)))
    const { weights: _w, ...header } = back
    const { weights: _o, ...sent } = order
    expect(header).toEqual(sent)
    expect([...back.weights.parts.keys()]).toEqual([...weights.parts.keys()])
    for (const [name, part] of weights.parts)
      for (const [t, tensor] of Object.entries(part.tensors)) {
        const got = back.weights.parts.get(name)!.tensors[t]!
        expect([got.dtype, got.shape]).toEqual([tensor.dtype, tensor.shape])
        expect(Buffer.from(got.data.buffer).equals(Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength))).toBe(true)
      }
  })

  it("a work order whose nodes do not match its stages, or whose stage is not among them, is refused as MalformedWork", () => {
    const why = (o: StageOrder) => Either.match(decodeOrder(encodeOrder(o)), { onLeft: (e) => e.message, onRight: () => "read" })
    expect(why({ ...order, nodes: ["n0"] })).toMatch(/naming 1 nodes for 2 stages/)
    expect(why({ ...order, stage: 2 })).toMatch(/for stage 2 of 2/)
  })

  it("a stage's gradients read back with their precision and exact values (property)", () => {
    fc.assert(
      fc.property(floatArrays, fc.double({ noNaN: true, noDefaultInfinity: true }), (arrays, loss) => {
        const grads = new Map(arrays.map((a, i) => [`layer${i}.attention`, { wq: a, wk: a.slice().reverse() }] as const))
        const back = Either.getOrThrow(decodeAnswer(encodeAnswer({ kind: "done", attempt: "x", stage: 0, loss, busyMs: 1, transport: { ...noTransport, chunks: 3, retries: 1 }, grads })))
        expect(back.kind).toBe("done")
        if (back.kind !== "done") return
        // JSON has no -0: the loss comes back equal, if not with its sign of zero.
        expect(back.loss === loss).toBe(true)
        expect(back.transport).toEqual({ ...noTransport, chunks: 3, retries: 1 })
        for (const [part, ts] of grads)
          for (const [t, x] of Object.entries(ts)) {
            const y = back.grads.get(part)![t]!
            expect(y.constructor).toBe(x.constructor)
            expect(Array.from(y)).toEqual(Array.from(x))
          }
      })
    )
  })

  it("a message cut short or padded is refused as MalformedWork, never read as other floats (property)", () => {
    const messages = [encodeOrder(order), encodeTensor("a1", 0, new Float64Array([1, 2, 3])), encodeAnswer({ kind: "done", attempt: "x", stage: 0, loss: 1, busyMs: 1, transport: noTransport, grads: new Map([["head", { w: new Float32Array([1, 2]) }]]) })]
    const decoders: ReadonlyArray<(bytes: Uint8Array) => Either.Either<unknown, MalformedWork>> = [decodeOrder, decodeTensor, decodeAnswer]
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 7 }), fc.boolean(), (which, n, cut) => {
        const m = messages[which]!
        const changed = cut ? m.subarray(0, m.length - n) : Uint8Array.from([...m, ...new Array<number>(n).fill(0)])
        const r = decoders[which]!(changed)
        // A tensor's body may be any whole number of floats: only a ragged one is refused.
        if (which === 1 && n % 8 === 0) return
        expect(Either.isLeft(r) && r.left._tag).toBe("MalformedWork")
      })
    )
  })
})
