/** IR graph → ONNX ModelProto bytes (IR version 8, opset 17), deterministically. */
import onnxPkg from "onnx-proto"
import type { onnx as Onnx } from "onnx-proto"
import type { Attr, ConstTensor, Dim, ElemType, Graph, ValueMeta } from "./ir.ts"

const { onnx } = onnxPkg

export const OPSET = 17
export const IR_VERSION = 8

const DATA_TYPE: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  double: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL
}

const rawBytes = (t: ConstTensor): Uint8Array => {
  switch (t.type) {
    case "float":
      return new Uint8Array(Float32Array.from(t.values).buffer)
    case "double":
      return new Uint8Array(Float64Array.from(t.values).buffer)
    case "int64":
      return new Uint8Array(BigInt64Array.from(t.values.map((v) => BigInt(v))).buffer)
    case "bool":
      return Uint8Array.from(t.values.map((v) => (v ? 1 : 0)))
  }
}

// Raw data is little-endian in ONNX; typed arrays are host-endian, and every platform Node targets is little-endian.
const tensorProto = (name: string, t: ConstTensor): Onnx.ITensorProto => ({ name, dataType: DATA_TYPE[t.type], dims: [...t.shape], rawData: rawBytes(t) })

const valueInfo = (name: string, m: ValueMeta): Onnx.IValueInfoProto => ({
  name,
  type: {
    tensorType: {
      elemType: DATA_TYPE[m.type],
      shape: { dim: m.shape.map((d: Dim) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) }
    }
  }
})

const AT = onnx.AttributeProto.AttributeType

const attribute = (name: string, a: Attr): Onnx.IAttributeProto => {
  if ("i" in a) return { name, type: AT.INT, i: a.i }
  if ("f" in a) return { name, type: AT.FLOAT, f: a.f }
  if ("ints" in a) return { name, type: AT.INTS, ints: [...a.ints] }
  if ("s" in a) return { name, type: AT.STRING, s: new TextEncoder().encode(a.s) }
  return { name, type: AT.TENSOR, t: tensorProto("", a.t) }
}

/** Attributes that opset 17 takes as constant int64 inputs instead. */
const AS_INPUT: Record<string, string> = { ReduceSum: "axes", Unsqueeze: "axes", Reshape: "shape" }

export const toOnnxModel = (g: Graph): Onnx.IModelProto => {
  const initializers: Onnx.ITensorProto[] = [...g.constants].map(([n, t]) => tensorProto(n, t))
  const nodes: Onnx.INodeProto[] = g.nodes.map((n) => {
    const inputs = [...n.inputs]
    const attrs = { ...n.attrs }
    const asInput = AS_INPUT[n.op]
    if (asInput !== undefined && attrs[asInput] !== undefined) {
      const a = attrs[asInput]!
      if (!("ints" in a)) throw new Error(`${n.op}.${asInput} must be ints`)
      const cname = `${n.outputs[0]}__${asInput}`
      initializers.push(tensorProto(cname, { type: "int64", shape: [a.ints.length], values: a.ints }))
      inputs.push(cname)
      delete attrs[asInput]
    }
    return {
      opType: n.op,
      name: n.outputs[0]!,
      input: inputs,
      output: [...n.outputs],
      attribute: Object.keys(attrs)
        .sort()
        .map((k) => attribute(k, attrs[k]!))
    }
  })
  const meta = (v: string) => {
    const m = g.values.get(v)
    if (m === undefined) throw new Error(`unknown value ${v}`)
    return m
  }
  return {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: "blyan",
    graph: {
      name: g.name,
      node: nodes,
      input: g.inputs.map((i) => valueInfo(i, meta(i))),
      output: g.outputs.map((o) => valueInfo(o, meta(o))),
      initializer: initializers
    }
  }
}

export const serializeGraph = (g: Graph): Uint8Array => onnx.ModelProto.encode(onnx.ModelProto.create(toOnnxModel(g))).finish()
