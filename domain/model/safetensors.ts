/**
 * A small safetensors codec (https://github.com/huggingface/safetensors, "Format"):
 *
 *   8 bytes   N, the header length, unsigned little-endian 64-bit
 *   N bytes   UTF-8 JSON: { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }
 *   rest      the byte buffer; offsets are relative to its start, cover it exactly, without overlap
 *
 * Supports F32, F16 and BF16 (values converted to/from Float32Array, rounding to nearest even).
 * Writing is deterministic: tensors sorted by name, laid out in that order, header padded with
 * spaces so the buffer starts 8-byte aligned. Reading refuses anything malformed with a typed error.
 */
import { Either, Schema } from "effect"
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from "./half.ts"
import type { DType, Part, Tensor } from "./tensor.ts"
import { numel } from "./tensor.ts"

export type StDType = "F32" | "F16" | "BF16"

const DTYPE_SIZE: Record<StDType, number> = { F32: 4, F16: 2, BF16: 2 }
/** Storage dtypes and their safetensors names. */
export const toSt: Record<DType, StDType> = { f32: "F32", f16: "F16", bf16: "BF16" }
export const fromSt: Record<StDType, DType> = { F32: "f32", F16: "f16", BF16: "bf16" }

/** Headers larger than this are refused before parsing (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000

export const MalformedKind = Schema.Literal(
  "TooShort",
  "HeaderTooLarge",
  "HeaderOutOfBounds",
  "BadJson",
  "BadHeader",
  "BadMetadata",
  "UnknownDtype",
  "SizeMismatch",
  "OffsetOutOfRange",
  "OverlappingOffsets",
  "OffsetGap",
  "TrailingBytes"
)
export type MalformedKind = typeof MalformedKind.Type

export class MalformedSafetensors extends Schema.TaggedError<MalformedSafetensors>()("MalformedSafetensors", {
  kind: MalformedKind,
  tensor: Schema.optional(Schema.String),
  message: Schema.String
}) {
  static of({ kind, reason, tensor }: { readonly kind: MalformedKind; readonly reason: string; readonly tensor?: string | undefined }): MalformedSafetensors {
    const message = `malformed safetensors (${kind})${tensor === undefined ? "" : ` at tensor ${JSON.stringify(tensor)}`}: ${reason}`
    return new MalformedSafetensors(tensor === undefined ? { kind, message } : { kind, tensor, message })
  }
}

/** A tensor to write: values as f32, stored as `dtype`. */
export interface StTensor {
  readonly dtype: StDType
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array
}

export interface StEntry {
  readonly name: string
  readonly dtype: StDType
  readonly shape: ReadonlyArray<number>
  readonly begin: number
  readonly end: number
}

/** A parsed file whose tensors are not yet converted: `buffer` is a view into the input bytes. */
export interface StFile {
  readonly metadata: Readonly<Record<string, string>>
  readonly entries: ReadonlyArray<StEntry>
  readonly buffer: Uint8Array
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

// ---------------------------------------------------------------------------------------------
// writing

const tensorBytes = (t: StTensor): Uint8Array => {
  if (t.dtype === "F32") {
    const out = new Uint8Array(t.data.length * 4)
    const dv = new DataView(out.buffer)
    for (let i = 0; i < t.data.length; i++) dv.setFloat32(i * 4, t.data[i]!, true)
    return out
  }
  const bits = t.dtype === "F16" ? encodeF16(t.data) : encodeBf16(t.data)
  const out = new Uint8Array(bits.length * 2)
  for (let i = 0; i < bits.length; i++) {
    out[2 * i] = bits[i]! & 0xff
    out[2 * i + 1] = bits[i]! >>> 8
  }
  return out
}

/** A tensor to write as it is stored: little-endian bytes of its dtype. */
export interface StStoredTensor {
  readonly dtype: StDType
  readonly shape: ReadonlyArray<number>
  readonly bytes: Uint8Array
}

/** Encodes tensors (and optional string metadata) as safetensors bytes; the same input gives the same bytes. */
export const encodeSafetensors = (
  tensors: Readonly<Record<string, StTensor>>,
  metadata: Readonly<Record<string, string>> = {}
): Uint8Array => {
  const stored: Record<string, StStoredTensor> = Object.create(null)
  for (const name of Object.keys(tensors)) {
    const t = tensors[name]!
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError(`tensor ${name}: bad shape [${t.shape}]`)
    if (numel(t.shape) !== t.data.length) throw new RangeError(`tensor ${name}: shape [${t.shape}] does not hold ${t.data.length} values`)
    stored[name] = { dtype: t.dtype, shape: t.shape, bytes: tensorBytes(t) }
  }
  return encodeStoredSafetensors(stored, metadata)
}

/** Where each tensor of a safetensors file goes: the file's size, its first bytes (the length and the header) and each tensor's range. */
export type StoredLayout = { readonly size: number; readonly head: Uint8Array; readonly ranges: ReadonlyMap<string, readonly [number, number]> }

/** The layout of a file of `tensors` (dtype and shape each) and `metadata`, as `encodeSafetensors` writes it: by name, header padded to 8 bytes. */
export const storedLayout = (
  tensors: Readonly<Record<string, { readonly dtype: StDType; readonly shape: ReadonlyArray<number> }>>,
  metadata: Readonly<Record<string, string>> = {}
): StoredLayout => {
  const names = Object.keys(tensors).sort()
  // A null prototype, as in decoding: a tensor may be named "__proto__".
  const header: Record<string, unknown> = Object.create(null)
  const metaKeys = Object.keys(metadata).sort()
  if (metaKeys.length > 0) header.__metadata__ = Object.fromEntries(metaKeys.map((k) => [k, metadata[k]!]))
  const spans: Array<readonly [string, number, number]> = []
  let offset = 0
  for (const name of names) {
    if (name === "__metadata__") throw new RangeError(`"__metadata__" cannot name a tensor`)
    const t = tensors[name]!
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError(`tensor ${name}: bad shape [${t.shape}]`)
    const bytes = numel(t.shape) * DTYPE_SIZE[t.dtype]
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] }
    spans.push([name, offset, offset + bytes])
    offset += bytes
  }
  let json = new TextEncoder().encode(JSON.stringify(header))
  const padded = Math.ceil(json.length / 8) * 8
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20)
    p.set(json)
    json = p
  }
  const head = new Uint8Array(8 + json.length)
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true)
  head.set(json, 8)
  return { size: head.length + offset, head, ranges: new Map(spans.map(([name, begin, end]) => [name, [head.length + begin, head.length + end] as const])) }
}

/** Encodes tensors already in their stored bytes (a checkpoint's, unconverted); deterministic as `encodeSafetensors`. */
export const encodeStoredSafetensors = (
  tensors: Readonly<Record<string, StStoredTensor>>,
  metadata: Readonly<Record<string, string>> = {}
): Uint8Array => {
  const layout = storedLayout(tensors, metadata)
  const out = new Uint8Array(layout.size)
  out.set(layout.head)
  for (const [name, [begin, end]] of layout.ranges) {
    const bytes = tensors[name]!.bytes
    if (bytes.length !== end - begin) throw new RangeError(`tensor ${name}: shape [${tensors[name]!.shape}] of ${tensors[name]!.dtype} is not ${bytes.length} bytes`)
    out.set(bytes, begin)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// reading

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0

/** Parses and validates the header and layout without converting any tensor. */
export const parseSafetensors = (bytes: Uint8Array): Either.Either<StFile, MalformedSafetensors> => {
  const fail = (kind: MalformedKind, reason: string) => Either.left(MalformedSafetensors.of({ kind, reason }))
  if (bytes.length < 8) return fail("TooShort", `${bytes.length} bytes, fewer than the 8-byte header length`)
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true)
  if (n > BigInt(bytes.length - 8)) return fail("HeaderOutOfBounds", `header length ${n} exceeds the ${bytes.length - 8} bytes after it`)
  if (n > BigInt(MAX_HEADER_BYTES)) return fail("HeaderTooLarge", `header length ${n} exceeds ${MAX_HEADER_BYTES}`)
  const headerLen = Number(n)
  const buffer = bytes.subarray(8 + headerLen)
  return Either.map(parseHeader(bytes.subarray(8, 8 + headerLen), buffer.length), ({ metadata, entries }) => ({ metadata, entries, buffer }))
}

/** A validated header: its metadata and its entries (offsets relative to the data section). */
export interface StHeader {
  readonly metadata: Readonly<Record<string, string>>
  readonly entries: ReadonlyArray<StEntry>
}

/**
 * Parses and validates the JSON header (the N bytes after the length) and its layout: entries
 * cover the data section from 0 without overlap or gap. With `dataLength`, every range must also
 * lie within the data section and the last must end exactly at its end; without it (a streaming
 * reader that has only the header) the caller checks the ranges against its file itself.
 */
export const parseHeader = (headerBytes: Uint8Array, dataLength?: number): Either.Either<StHeader, MalformedSafetensors> => {
  const fail = (kind: MalformedKind, reason: string, tensor?: string) =>
    Either.left(MalformedSafetensors.of({ kind, reason, tensor }))
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes)
  } catch {
    return fail("BadJson", "header is not valid UTF-8")
  }
  let header: unknown
  try {
    header = JSON.parse(text)
  } catch (e) {
    return fail("BadJson", `header is not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!isRecord(header)) return fail("BadHeader", "header is not a JSON object")
  let metadata: Record<string, string> = {}
  const entries: StEntry[] = []
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isRecord(raw) || !Object.values(raw).every((v) => typeof v === "string")) {
        return fail("BadMetadata", "__metadata__ must map strings to strings")
      }
      metadata = raw as Record<string, string>
      continue
    }
    if (!isRecord(raw)) return fail("BadHeader", "entry is not an object", name)
    const { dtype, shape, data_offsets: offsets } = raw
    if (typeof dtype !== "string") return fail("BadHeader", "dtype is not a string", name)
    if (!Object.hasOwn(DTYPE_SIZE, dtype)) return fail("UnknownDtype", `dtype ${dtype} is not supported (F32, F16, BF16)`, name)
    if (!Array.isArray(shape) || !shape.every(isCount)) return fail("BadHeader", "shape is not a list of non-negative integers", name)
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      return fail("BadHeader", "data_offsets is not [begin, end] with non-negative integers", name)
    }
    const [begin, end] = offsets as [number, number]
    if (end < begin) return fail("BadHeader", `data_offsets [${begin}, ${end}] end before they begin`, name)
    if (dataLength !== undefined && end > dataLength) {
      return fail("OffsetOutOfRange", `data_offsets [${begin}, ${end}] exceed the ${dataLength}-byte buffer`, name)
    }
    const st = dtype as StDType
    const expected = numel(shape) * DTYPE_SIZE[st]
    if (expected !== end - begin) {
      return fail("SizeMismatch", `shape [${shape}] of ${st} needs ${expected} bytes, data_offsets span ${end - begin}`, name)
    }
    entries.push({ name, dtype: st, shape, begin, end })
  }
  // The buffer must be covered exactly: sorted by position, each tensor starts where the last ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)
  let at = 0
  for (const e of sorted) {
    if (e.begin < at) return fail("OverlappingOffsets", `data_offsets [${e.begin}, ${e.end}] overlap bytes before ${at}`, e.name)
    if (e.begin > at) return fail("OffsetGap", `bytes [${at}, ${e.begin}) belong to no tensor`, e.name)
    at = e.end
  }
  if (dataLength !== undefined && at !== dataLength) return fail("TrailingBytes", `${dataLength - at} bytes after the last tensor`)
  return Either.right({ metadata, entries })
}

/** The values of one parsed tensor as f32. */
export const entryData = (file: StFile, entry: StEntry): Float32Array => {
  const raw = file.buffer.slice(entry.begin, entry.end) // an aligned copy
  if (entry.dtype === "F32") {
    if (LITTLE_ENDIAN) return new Float32Array(raw.buffer, 0, raw.length / 4)
    const dv = new DataView(raw.buffer)
    return Float32Array.from({ length: raw.length / 4 }, (_, i) => dv.getFloat32(4 * i, true))
  }
  const bits = new Uint16Array(raw.length / 2)
  for (let i = 0; i < bits.length; i++) bits[i] = raw[2 * i]! | (raw[2 * i + 1]! << 8)
  return entry.dtype === "F16" ? decodeF16(bits) : decodeBf16(bits)
}

export interface Safetensors {
  readonly metadata: Readonly<Record<string, string>>
  readonly tensors: Readonly<Record<string, StTensor>>
}

/** Parses, validates and converts every tensor. */
export const decodeSafetensors = (bytes: Uint8Array): Either.Either<Safetensors, MalformedSafetensors> =>
  Either.map(parseSafetensors(bytes), (file) => {
    // A null prototype: tensor names come from the file and may be "__proto__".
    const tensors: Record<string, StTensor> = Object.create(null)
    for (const e of [...file.entries].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: entryData(file, e) }
    }
    return { metadata: file.metadata, tensors }
  })

// ---------------------------------------------------------------------------------------------
// parts (ledger block payloads)

/** Metadata key naming the block a payload belongs to. */
export const PART_METADATA_KEY = "blyan.part"

/** A part as safetensors bytes: its block payload. */
export const encodePart = (part: Part): Uint8Array =>
  encodeSafetensors(
    Object.fromEntries(Object.entries(part.tensors).map(([n, t]) => [n, { dtype: toSt[t.dtype], shape: t.shape, data: t.data }])),
    { [PART_METADATA_KEY]: part.name }
  )

/** The layout of a part's block payload whose tensors are kept in their stored bytes. */
export const storedPartLayout = (name: string, tensors: Readonly<Record<string, { readonly dtype: StDType; readonly shape: ReadonlyArray<number> }>>): StoredLayout =>
  storedLayout(tensors, { [PART_METADATA_KEY]: name })

/** A block payload back to a part; its name comes from the metadata. */
export const decodePart = (bytes: Uint8Array): Either.Either<Part, MalformedSafetensors> =>
  Either.flatMap(decodeSafetensors(bytes), (st) => {
    const name = st.metadata[PART_METADATA_KEY]
    if (name === undefined) {
      return Either.left(MalformedSafetensors.of({ kind: "BadMetadata", reason: `no ${PART_METADATA_KEY} entry naming the part` }))
    }
    const tensors: Record<string, Tensor> = Object.create(null)
    for (const [n, t] of Object.entries(st.tensors)) tensors[n] = { dtype: fromSt[t.dtype], shape: t.shape, data: t.data }
    return Either.right({ name, tensors })
  })
