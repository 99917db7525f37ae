/**
 * Reverse-mode automatic differentiation over the IR: appends to a forward graph the nodes that
 * compute vector-Jacobian products, so one ONNX graph recomputes the forward pass and returns the
 * gradients of the chosen inputs.
 *
 * Differentiable ops: Add Sub Mul Div (with broadcasting), Neg Exp Log Tanh Sqrt Relu Identity,
 * MatMul (batched and broadcast), Transpose, Reshape, Softmax, ReduceSum, ReduceMean, Gather
 * (w.r.t. the table). Nodes marked stop-gradient are constants to the backward pass.
 */
import type { Dim, Graph, Node } from "./ir.ts"
import { GraphBuilder, intAttr, intsAttr } from "./ir.ts"

/** Emits the gradients of a node's inputs, given the gradient of its output. undefined: not needed. */
type Rule = (b: GraphBuilder, node: Node, gy: string, needs: ReadonlyArray<boolean>) => ReadonlyArray<string | undefined>

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** Sums a broadcast gradient back down to `target`'s shape. */
export const reduceTo = (b: GraphBuilder, g: string, target: ReadonlyArray<Dim>): string => {
  let cur = g
  const lead = b.rank(cur) - target.length
  if (lead > 0) cur = b.reduceSum(cur, range(lead), false)
  const gs = b.shapeOf(cur)
  const axes = target.flatMap((d, i) => (d === 1 && gs[i] !== 1 ? [i] : []))
  if (axes.length > 0) cur = b.reduceSum(cur, axes, true)
  return cur
}

const swapLast = (b: GraphBuilder, x: string) => {
  const r = b.rank(x)
  return b.transpose(x, [...range(r - 2), r - 1, r - 2])
}

const arg = (node: Node, i: number) => node.inputs[i]!
const out = (node: Node) => node.outputs[0]!

const RULES: Record<string, Rule> = {
  Identity: (_b, _n, gy) => [gy],
  Add: (b, n, gy, needs) => [
    needs[0] ? reduceTo(b, gy, b.shapeOf(arg(n, 0))) : undefined,
    needs[1] ? reduceTo(b, gy, b.shapeOf(arg(n, 1))) : undefined
  ],
  Sub: (b, n, gy, needs) => [
    needs[0] ? reduceTo(b, gy, b.shapeOf(arg(n, 0))) : undefined,
    needs[1] ? reduceTo(b, b.neg(gy), b.shapeOf(arg(n, 1))) : undefined
  ],
  Mul: (b, n, gy, needs) => [
    needs[0] ? reduceTo(b, b.mul(gy, arg(n, 1)), b.shapeOf(arg(n, 0))) : undefined,
    needs[1] ? reduceTo(b, b.mul(gy, arg(n, 0)), b.shapeOf(arg(n, 1))) : undefined
  ],
  // y = a / b: da = g / b, db = -g · y / b
  Div: (b, n, gy, needs) => [
    needs[0] ? reduceTo(b, b.div(gy, arg(n, 1)), b.shapeOf(arg(n, 0))) : undefined,
    needs[1] ? reduceTo(b, b.neg(b.div(b.mul(gy, out(n)), arg(n, 1))), b.shapeOf(arg(n, 1))) : undefined
  ],
  Neg: (b, _n, gy) => [b.neg(gy)],
  Exp: (b, n, gy) => [b.mul(gy, out(n))],
  Log: (b, n, gy) => [b.div(gy, arg(n, 0))],
  // tanh' = 1 - y²
  Tanh: (b, n, gy) => [b.mul(gy, b.sub(b.scalar(1), b.mul(out(n), out(n))))],
  // sqrt' = 1 / (2 y)
  Sqrt: (b, n, gy) => [b.div(gy, b.mul(out(n), b.scalar(2)))],
  Relu: (b, n, gy) => [b.where(b.greater(arg(n, 0), b.scalar(0)), gy, b.scalar(0))],
  MatMul: (b, n, gy, needs) => {
    const A = arg(n, 0)
    const B = arg(n, 1)
    const sa = b.shapeOf(A)
    const sb = b.shapeOf(B)
    let gA: string | undefined
    let gB: string | undefined
    if (needs[0]) gA = reduceTo(b, b.matmul(gy, swapLast(b, B)), sa)
    if (needs[1]) {
      if (sb.length === 2 && sa.length > 2) {
        // x [..., k] @ W [k, n]: fold the batch dimensions into one matrix product.
        const k = sa[sa.length - 1]
        const m = sb[1]
        if (typeof k !== "number" || typeof m !== "number") throw new Error("MatMul gradient: weight dims must be static")
        gB = b.matmul(b.transpose(b.reshape(A, [-1, k]), [1, 0]), b.reshape(gy, [-1, m]))
      } else gB = reduceTo(b, b.matmul(swapLast(b, A), gy), sb)
    }
    return [gA, gB]
  },
  Transpose: (b, n, gy) => {
    const perm = intsAttr(n.attrs.perm)
    const inv = new Array<number>(perm.length)
    perm.forEach((p, i) => (inv[p] = i))
    return [b.transpose(gy, inv)]
  },
  Reshape: (b, n, gy) => [b.reshapeTo(gy, b.shape(arg(n, 0)), b.shapeOf(arg(n, 0)))],
  // dx = y ⊙ (g − Σ g ⊙ y)
  Softmax: (b, n, gy) => {
    const y = out(n)
    const axis = intAttr(n.attrs.axis)
    return [b.mul(y, b.sub(gy, b.reduceSum(b.mul(gy, y), [axis], true)))]
  },
  ReduceSum: (b, n, gy) => [broadcastBack(b, n, gy)],
  ReduceMean: (b, n, gy) => {
    const x = arg(n, 0)
    const s = b.shapeOf(x)
    let count = 1
    for (const a of intsAttr(n.attrs.axes)) {
      const d = s[a]
      if (typeof d !== "number") throw new Error("ReduceMean gradient: reduced dims must be static")
      count *= d
    }
    return [b.div(broadcastBack(b, n, gy), b.scalar(count))]
  },
  // d table = scatter-add of the output gradient rows at the gathered indices.
  Gather: (b, n, gy, needs) => {
    if (needs[1]) throw new Error("Gather: no gradient w.r.t. indices")
    if (intAttr(n.attrs.axis) !== 0) throw new Error("Gather gradient: only axis 0")
    const table = arg(n, 0)
    return [b.scatterNDAdd(b.zerosLike(table), b.unsqueeze(arg(n, 1), [-1]), gy), undefined]
  }
}

/** Gradient of a reduction: the output gradient spread back over the reduced axes. */
const broadcastBack = (b: GraphBuilder, n: Node, gy: string): string => {
  const x = arg(n, 0)
  const kept = intAttr(n.attrs.keepdims) === 1 ? gy : b.unsqueeze(gy, intsAttr(n.attrs.axes))
  return b.expand(kept, b.shape(x), b.shapeOf(x))
}

/** The ops this autodiff can differentiate. */
export const DIFFERENTIABLE_OPS: ReadonlyArray<string> = Object.keys(RULES).sort()

export interface DifferentiateOptions {
  /** Inputs whose gradients are wanted; each comes out as output `grad.<name>`. */
  readonly wrt: ReadonlyArray<string>
  /**
   * Outputs to differentiate. A scalar output with `seed: "one"` is a loss (dL/dL = 1); otherwise
   * the upstream gradient comes in as a new input `grad.<output>` (a vector-Jacobian product).
   */
  readonly seeds: ReadonlyArray<{ readonly output: string; readonly seed: "one" | "input" }>
  /** Forward outputs to keep as outputs of the backward graph (e.g. the loss). */
  readonly keep?: ReadonlyArray<string>
  readonly name?: string
}

export const gradName = (v: string): string => `grad.${v}`

/** Returns a graph computing the forward pass and the gradients of `wrt` (zeros where unused). */
export const differentiate = (g: Graph, opts: DifferentiateOptions): Graph => {
  const b = GraphBuilder.from(g, opts.name ?? `${g.name}.backward`)
  for (const w of opts.wrt) {
    if (!g.inputs.includes(w)) throw new Error(`${w} is not an input of ${g.name}`)
    const t = g.values.get(w)!.type
    if (t !== g.float) throw new Error(`cannot differentiate w.r.t. ${w} of type ${t}`)
  }
  // Values that depend on some wrt input through differentiable edges.
  const live = new Set<string>(opts.wrt)
  for (const n of g.nodes) {
    if (!n.stopGradient && n.inputs.some((i) => live.has(i))) for (const o of n.outputs) live.add(o)
  }
  const contributions = new Map<string, string[]>()
  const contribute = (v: string, grad: string) => {
    const list = contributions.get(v)
    if (list === undefined) contributions.set(v, [grad])
    else list.push(grad)
  }
  for (const s of opts.seeds) {
    if (!g.outputs.includes(s.output)) throw new Error(`${s.output} is not an output of ${g.name}`)
    if (s.seed === "one") {
      if (b.rank(s.output) !== 0) throw new Error(`seed "one" needs a scalar output, ${s.output} has rank ${b.rank(s.output)}`)
      contribute(s.output, b.scalar(1))
    } else contribute(s.output, b.input(gradName(s.output), b.shapeOf(s.output), b.meta(s.output).type))
  }
  const total = (v: string): string | undefined => {
    const list = contributions.get(v)
    if (list === undefined || list.length === 0) return undefined
    let acc = list[0]!
    for (const c of list.slice(1)) acc = b.add(acc, c)
    return acc
  }
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!
    if (n.stopGradient || !live.has(n.outputs[0]!)) continue
    const gy = total(n.outputs[0]!)
    if (gy === undefined) continue
    const rule = RULES[n.op]
    if (rule === undefined) throw new Error(`no gradient rule for ${n.op} (node ${n.outputs[0]})`)
    const needs = n.inputs.map((x) => live.has(x))
    const grads = rule(b, n, gy, needs)
    n.inputs.forEach((x, k) => {
      const gx = grads[k]
      if (needs[k] && gx !== undefined) contribute(x, gx)
    })
  }
  const outputs = [...(opts.keep ?? [])]
  for (const w of opts.wrt) {
    const gw = total(w) ?? b.zerosLike(w)
    outputs.push(b.identity(gw, gradName(w)))
  }
  return b.build(outputs)
}

/** The gradient graph of a scalar loss output. */
export const gradientOf = (g: Graph, loss: string, wrt: ReadonlyArray<string>, opts: { readonly keepLoss?: boolean; readonly name?: string } = {}): Graph =>
  differentiate(g, { wrt, seeds: [{ output: loss, seed: "one" }], keep: opts.keepLoss === false ? [] : [loss], ...(opts.name === undefined ? {} : { name: opts.name }) })

/** The vector-Jacobian product graph: upstream gradients of every output in, gradients of `wrt` out. */
export const vjp = (g: Graph, wrt: ReadonlyArray<string>, name?: string): Graph =>
  differentiate(g, { wrt, seeds: g.outputs.map((o) => ({ output: o, seed: "input" as const })), ...(name === undefined ? {} : { name }) })
