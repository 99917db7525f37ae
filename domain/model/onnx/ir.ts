/**
 * A small graph IR with static shape inference, serialised to ONNX by `serialize.ts`.
 *
 * Ops are "logical": attributes that opset 17 wants as constant inputs (ReduceSum axes, Unsqueeze
 * axes, a static Reshape target) are kept as attributes here, so that gradient rules can read them,
 * and become initializers on serialisation. Dimensions are numbers or symbols (e.g. "B", "T", "N");
 * one graph serves every batch and sequence length, so the executor's session cache stays small.
 */

export type Dim = number | string
export type ElemType = "float" | "double" | "int64" | "bool"
export type FloatType = "float" | "double"

export interface ValueMeta {
  readonly type: ElemType
  readonly shape: ReadonlyArray<Dim>
}

export interface ConstTensor {
  readonly type: ElemType
  readonly shape: ReadonlyArray<number>
  readonly values: ReadonlyArray<number>
}

export type Attr =
  | { readonly i: number }
  | { readonly f: number }
  | { readonly ints: ReadonlyArray<number> }
  | { readonly s: string }
  | { readonly t: ConstTensor }

export interface Node {
  readonly op: string
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
  readonly attrs: Readonly<Record<string, Attr>>
  /** Reverse-mode autodiff treats this node's output as a constant (e.g. the max in log-sum-exp). */
  readonly stopGradient: boolean
}

export interface Graph {
  readonly name: string
  readonly float: FloatType
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
  readonly nodes: ReadonlyArray<Node>
  readonly constants: ReadonlyMap<string, ConstTensor>
  readonly values: ReadonlyMap<string, ValueMeta>
  readonly nextId: number
}

export const intAttr = (a: Attr | undefined): number => {
  if (a === undefined || !("i" in a)) throw new Error("expected an int attribute")
  return a.i
}
export const intsAttr = (a: Attr | undefined): ReadonlyArray<number> => {
  if (a === undefined || !("ints" in a)) throw new Error("expected an ints attribute")
  return a.ints
}

/** Broadcast two shapes (numpy rules). Differing symbols are assumed equal at run time; ORT checks. */
export const broadcastShapes = (a: ReadonlyArray<Dim>, b: ReadonlyArray<Dim>): Dim[] => {
  const r = Math.max(a.length, b.length)
  const out: Dim[] = []
  for (let i = 0; i < r; i++) {
    const da = a[i - (r - a.length)] ?? 1
    const db = b[i - (r - b.length)] ?? 1
    if (da === db || db === 1) out.push(da)
    else if (da === 1) out.push(db)
    else if (typeof da === "number" && typeof db === "number") throw new Error(`shapes [${a}] and [${b}] do not broadcast`)
    else out.push(typeof da === "number" ? da : db)
  }
  return out
}

const normAxis = (axis: number, rank: number): number => {
  const a = axis < 0 ? axis + rank : axis
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`)
  return a
}

/** Builds a graph node by node, inferring every value's type and shape as it goes. */
export class GraphBuilder {
  private readonly nodes: Node[] = []
  private readonly constants = new Map<string, ConstTensor>()
  private readonly values = new Map<string, ValueMeta>()
  private readonly inputs: string[] = []
  private nextId = 0

  constructor(
    readonly name: string,
    readonly float: FloatType
  ) {}

  /** Continues an existing graph (used by autodiff to append the backward pass). */
  static from(g: Graph, name = g.name): GraphBuilder {
    const b = new GraphBuilder(name, g.float)
    b.nodes.push(...g.nodes)
    for (const [k, v] of g.constants) b.constants.set(k, v)
    for (const [k, v] of g.values) b.values.set(k, v)
    b.inputs.push(...g.inputs)
    b.nextId = g.nextId
    return b
  }

  meta(v: string): ValueMeta {
    const m = this.values.get(v)
    if (m === undefined) throw new Error(`unknown value ${v}`)
    return m
  }
  shapeOf(v: string): ReadonlyArray<Dim> {
    return this.meta(v).shape
  }
  rank(v: string): number {
    return this.meta(v).shape.length
  }

  private fresh(hint: string): string {
    return `${hint}_${this.nextId++}`
  }

  private define(name: string, meta: ValueMeta): void {
    if (this.values.has(name)) throw new Error(`value ${name} defined twice`)
    this.values.set(name, meta)
  }

  input(name: string, shape: ReadonlyArray<Dim>, type: ElemType = this.float): string {
    this.define(name, { type, shape })
    this.inputs.push(name)
    return name
  }

  constant(values: ReadonlyArray<number>, shape: ReadonlyArray<number>, type: ElemType = this.float): string {
    const name = this.fresh("const")
    this.constants.set(name, { type, shape, values })
    this.define(name, { type, shape })
    return name
  }

  scalar(v: number): string {
    return this.constant([v], [])
  }

  /** Emits a node and returns its output, or renames the output when `out` is given. */
  node(op: string, inputs: ReadonlyArray<string>, meta: ValueMeta, attrs: Record<string, Attr> = {}, opts: { out?: string; stopGradient?: boolean } = {}): string {
    for (const i of inputs) this.meta(i)
    const out = opts.out ?? this.fresh(op.toLowerCase())
    this.define(out, meta)
    this.nodes.push({ op, inputs, outputs: [out], attrs, stopGradient: opts.stopGradient ?? false })
    return out
  }

  private binary(op: string, a: string, b: string): string {
    const ma = this.meta(a)
    const mb = this.meta(b)
    if (ma.type !== mb.type) throw new Error(`${op}: ${a} is ${ma.type}, ${b} is ${mb.type}`)
    return this.node(op, [a, b], { type: ma.type, shape: broadcastShapes(ma.shape, mb.shape) })
  }
  private unary(op: string, x: string, attrs: Record<string, Attr> = {}, stopGradient = false): string {
    return this.node(op, [x], this.meta(x), attrs, { stopGradient })
  }

  readonly add = (a: string, b: string): string => this.binary("Add", a, b)
  readonly sub = (a: string, b: string): string => this.binary("Sub", a, b)
  readonly mul = (a: string, b: string): string => this.binary("Mul", a, b)
  readonly div = (a: string, b: string): string => this.binary("Div", a, b)
  readonly neg = (x: string): string => this.unary("Neg", x)
  readonly exp = (x: string): string => this.unary("Exp", x)
  readonly log = (x: string): string => this.unary("Log", x)
  readonly tanh = (x: string): string => this.unary("Tanh", x)
  readonly sqrt = (x: string): string => this.unary("Sqrt", x)
  readonly relu = (x: string): string => this.unary("Relu", x)
  identity(x: string, out?: string) {
    return out === undefined ? this.unary("Identity", x) : this.node("Identity", [x], this.meta(x), {}, { out })
  }
  /** The value itself, but a constant as far as gradients go. */
  stopGradient(x: string) {
    return this.unary("Identity", x, {}, true)
  }

  matmul(a: string, b: string): string {
    const sa = this.shapeOf(a)
    const sb = this.shapeOf(b)
    if (sa.length < 2 || sb.length < 2) throw new Error("MatMul: operands must have rank ≥ 2")
    const [m, k1] = sa.slice(-2) as [Dim, Dim]
    const [k2, n] = sb.slice(-2) as [Dim, Dim]
    if (typeof k1 === "number" && typeof k2 === "number" && k1 !== k2) throw new Error(`MatMul: [${sa}] × [${sb}]`)
    const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2))
    return this.node("MatMul", [a, b], { type: this.meta(a).type, shape: [...batch, m, n] })
  }

  transpose(x: string, perm: ReadonlyArray<number>): string {
    const s = this.shapeOf(x)
    if (perm.length !== s.length) throw new Error(`Transpose: perm [${perm}] for rank ${s.length}`)
    return this.node("Transpose", [x], { type: this.meta(x).type, shape: perm.map((p) => s[p]!) }, { perm: { ints: perm } })
  }

  /** Static target: 0 copies the input dimension, -1 is inferred (as in ONNX). */
  reshape(x: string, target: ReadonlyArray<number>): string {
    const s = this.shapeOf(x)
    const out: Dim[] = target.map((t, i) => (t === 0 ? s[i]! : t))
    const inferred = out.indexOf(-1)
    if (inferred >= 0) {
      const known = out.filter((d, i) => i !== inferred)
      const total = s.every((d) => typeof d === "number") ? (s as number[]).reduce((a, b) => a * b, 1) : undefined
      out[inferred] =
        total !== undefined && known.every((d) => typeof d === "number")
          ? total / (known as number[]).reduce((a, b) => a * b, 1)
          : this.fresh("?")
    }
    return this.node("Reshape", [x], { type: this.meta(x).type, shape: out }, { shape: { ints: target } })
  }

  /** Reshape to the run-time shape held in `shapeValue` (an int64 vector), statically `like`. */
  reshapeTo(x: string, shapeValue: string, like: ReadonlyArray<Dim>): string {
    return this.node("Reshape", [x, shapeValue], { type: this.meta(x).type, shape: like })
  }

  softmax(x: string, axis = -1): string {
    return this.unary("Softmax", x, { axis: { i: normAxis(axis, this.rank(x)) } })
  }

  private reduce(op: string, x: string, axes: ReadonlyArray<number>, keepdims: boolean, stopGradient = false): string {
    const s = this.shapeOf(x)
    const ax = [...new Set(axes.map((a) => normAxis(a, s.length)))].sort((a, b) => a - b)
    if (ax.length === 0) throw new Error(`${op}: no axes`)
    const shape = keepdims ? s.map((d, i) => (ax.includes(i) ? 1 : d)) : s.filter((_, i) => !ax.includes(i))
    return this.node(op, [x], { type: this.meta(x).type, shape }, { axes: { ints: ax }, keepdims: { i: keepdims ? 1 : 0 } }, { stopGradient })
  }
  reduceSum(x: string, axes: ReadonlyArray<number>, keepdims: boolean) {
    return this.reduce("ReduceSum", x, axes, keepdims)
  }
  reduceMean(x: string, axes: ReadonlyArray<number>, keepdims: boolean) {
    return this.reduce("ReduceMean", x, axes, keepdims)
  }
  /** Has no gradient rule: only for values behind a stop-gradient (numerical stabilisers). */
  reduceMaxNoGrad(x: string, axes: ReadonlyArray<number>, keepdims: boolean) {
    return this.reduce("ReduceMax", x, axes, keepdims, true)
  }

  /** Rows of `table` ([V, ...]) at int64 `indices`. */
  gather(table: string, indices: string): string {
    if (this.meta(indices).type !== "int64") throw new Error("Gather: indices must be int64")
    const st = this.shapeOf(table)
    return this.node("Gather", [table, indices], { type: this.meta(table).type, shape: [...this.shapeOf(indices), ...st.slice(1)] }, { axis: { i: 0 } })
  }

  /** `xs` joined along `axis`; no gradient rule: for inference graphs only (the decoding step). */
  concat(xs: ReadonlyArray<string>, axis: number): string {
    const shapes = xs.map((x) => this.shapeOf(x))
    const a = normAxis(axis, shapes[0]!.length)
    const dims = shapes.map((s) => s[a]!)
    const joined = dims.every((d) => typeof d === "number") ? (dims as number[]).reduce((x, y) => x + y, 0) : this.fresh("?")
    return this.node("Concat", xs, { type: this.meta(xs[0]!).type, shape: shapes[0]!.map((d, i) => (i === a ? joined : d)) }, { axis: { i: a } })
  }

  // --- ops used by gradient rules (no gradients of their own are needed) ---

  shape(x: string): string {
    return this.node("Shape", [x], { type: "int64", shape: [this.rank(x)] })
  }
  /** A tensor of `value` with the run-time shape `shapeValue`, statically `like`. */
  constantOfShape(shapeValue: string, value: number, type: ElemType, like: ReadonlyArray<Dim>): string {
    return this.node("ConstantOfShape", [shapeValue], { type, shape: like }, { value: { t: { type, shape: [1], values: [value] } } })
  }
  zerosLike(x: string): string {
    return this.constantOfShape(this.shape(x), 0, this.meta(x).type, this.shapeOf(x))
  }
  expand(x: string, shapeValue: string, like: ReadonlyArray<Dim>): string {
    return this.node("Expand", [x, shapeValue], { type: this.meta(x).type, shape: like })
  }
  unsqueeze(x: string, axes: ReadonlyArray<number>): string {
    const s = [...this.shapeOf(x)]
    const r = s.length + axes.length
    const ax = axes.map((a) => normAxis(a, r)).sort((a, b) => a - b)
    for (const a of ax) s.splice(a, 0, 1)
    return this.node("Unsqueeze", [x], { type: this.meta(x).type, shape: s }, { axes: { ints: ax } })
  }
  /** data with `updates` added at `indices` (ScatterND, reduction add). */
  scatterNDAdd(data: string, indices: string, updates: string): string {
    return this.node("ScatterND", [data, indices, updates], this.meta(data), { reduction: { s: "add" } })
  }
  greater(a: string, b: string): string {
    return this.node("Greater", [a, b], { type: "bool", shape: broadcastShapes(this.shapeOf(a), this.shapeOf(b)) })
  }
  where(cond: string, a: string, b: string): string {
    return this.node("Where", [cond, a, b], {
      type: this.meta(a).type,
      shape: broadcastShapes(this.shapeOf(cond), broadcastShapes(this.shapeOf(a), this.shapeOf(b)))
    })
  }

  build(outputs: ReadonlyArray<string>): Graph {
    for (const o of outputs) this.meta(o)
    return {
      name: this.name,
      float: this.float,
      inputs: [...this.inputs],
      outputs: [...outputs],
      nodes: [...this.nodes],
      constants: new Map(this.constants),
      values: new Map(this.values),
      nextId: this.nextId
    }
  }
}
