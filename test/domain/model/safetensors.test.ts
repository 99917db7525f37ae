import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { roundToDtype } from "../../../domain/model/half.ts"
import type { MalformedKind, StTensor } from "../../../domain/model/safetensors.ts"
import { decodePart, decodeSafetensors, encodePart, encodeSafetensors, parseSafetensors } from "../../../domain/model/safetensors.ts"

const enc = new TextEncoder()

/** A file from a header (object or raw text) and a buffer, as the format lays them out. */
const file = (header: unknown, buffer: Uint8Array | number, headerLen?: bigint): Uint8Array => {
  const json = enc.encode(typeof header === "string" ? header : JSON.stringify(header))
  const buf = typeof buffer === "number" ? new Uint8Array(buffer) : buffer
  const out = new Uint8Array(8 + json.length + buf.length)
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true)
  out.set(json, 8)
  out.set(buf, 8 + json.length)
  return out
}
const f32Bytes = (...xs: number[]) => new Uint8Array(new Float32Array(xs).buffer)

const expectMalformed = (bytes: Uint8Array, kind: MalformedKind, tensor?: string) => {
  const r = decodeSafetensors(bytes)
  expect(Either.isLeft(r), `expected ${kind}`).toBe(true)
  if (Either.isLeft(r)) {
    expect(r.left._tag).toBe("MalformedSafetensors")
    expect(r.left.kind).toBe(kind)
    if (tensor !== undefined) expect(r.left.tensor).toBe(tensor)
    expect(r.left.message).toContain(kind)
  }
}

describe("safetensors: the format as specified", () => {
  it("writes exactly the spec's layout: u64 LE length, JSON padded with spaces to 8 bytes, sorted names, contiguous data", () => {
    const bytes = encodeSafetensors(
      {
        b: { dtype: "F32", shape: [2], data: Float32Array.of(1, -2) },
        a: { dtype: "F16", shape: [1, 1], data: Float32Array.of(1) }
      },
      { format: "pt" }
    )
    const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[1,1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}'
    const padded = header + " ".repeat((8 - (header.length % 8)) % 8)
    const expected = new Uint8Array([
      ...new Uint8Array(new BigUint64Array([BigInt(padded.length)]).buffer),
      ...enc.encode(padded),
      0x00, 0x3c, // f16 1.0
      0x00, 0x00, 0x80, 0x3f, // f32 1.0
      0x00, 0x00, 0x00, 0xc0 // f32 -2.0
    ])
    expect(Array.from(bytes)).toEqual(Array.from(expected))
    expect((8 + padded.length) % 8).toBe(0)
  })

  it("reads a hand-built file: unpadded header, metadata, BF16 and F16 values, zero-size tensor", () => {
    const header = {
      w: { dtype: "BF16", shape: [3], data_offsets: [0, 6] },
      e: { dtype: "F32", shape: [0, 4], data_offsets: [6, 6] },
      h: { dtype: "F16", shape: [2], data_offsets: [6, 10] },
      __metadata__: { source: "hand" }
    }
    const buffer = new Uint8Array([0x80, 0x3f, 0x49, 0x40, 0x00, 0xc0, 0x00, 0x38, 0x01, 0x00])
    const r = decodeSafetensors(file(header, buffer))
    expect(Either.isRight(r)).toBe(true)
    const st = Either.getOrThrow(r)
    expect(st.metadata).toEqual({ source: "hand" })
    expect(Array.from(st.tensors.w!.data)).toEqual([1, 3.140625, -2])
    expect(st.tensors.e!.shape).toEqual([0, 4])
    expect(st.tensors.e!.data.length).toBe(0)
    expect(Array.from(st.tensors.h!.data)).toEqual([0.5, 2 ** -24])
  })

  it("round-trips any tensors (property), deterministically and independent of insertion order", () => {
    const tensorArb = fc
      .record({
        dtype: fc.constantFrom("F32" as const, "F16" as const, "BF16" as const),
        shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 })
      })
      .chain(({ dtype, shape }) => {
        const n = shape.reduce((a, b) => a * b, 1)
        return fc.float32Array({ minLength: n, maxLength: n, noNaN: true }).map((data): StTensor => ({
          dtype,
          shape,
          data: roundToDtype(data, dtype === "F32" ? "f32" : dtype === "F16" ? "f16" : "bf16")
        }))
      })
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__"), tensorArb, { maxKeys: 5 }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
        (tensors, metadata) => {
          const bytes = encodeSafetensors(tensors, metadata)
          const n = Number(new DataView(bytes.buffer).getBigUint64(0, true))
          expect((8 + n) % 8).toBe(0)
          const back = Either.getOrThrow(decodeSafetensors(bytes))
          expect(back.metadata).toEqual(metadata)
          expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(tensors).sort())
          for (const [k, t] of Object.entries(tensors)) {
            expect(back.tensors[k]!.dtype).toBe(t.dtype)
            expect(back.tensors[k]!.shape).toEqual(t.shape)
            expect(Array.from(back.tensors[k]!.data)).toEqual(Array.from(t.data))
          }
          const reversed = Object.fromEntries(Object.entries(tensors).reverse())
          expect(Array.from(encodeSafetensors(reversed, metadata))).toEqual(Array.from(bytes))
        }
      ),
      { numRuns: 200 }
    )
  })

  it("round-trips a tensor named __proto__ (found by the property above)", () => {
    const tensors = Object.fromEntries([["__proto__", { dtype: "F32" as const, shape: [1], data: Float32Array.from([2]) }]])
    const back = Either.getOrThrow(decodeSafetensors(encodeSafetensors(tensors)))
    expect(Object.keys(back.tensors)).toEqual(["__proto__"])
    expect(Array.from(back.tensors["__proto__"]!.data)).toEqual([2])
  })

  it("parts round-trip through their block payload, with the part name in the metadata", () => {
    const part = {
      name: "layer3.expert5",
      tensors: {
        w1: { dtype: "bf16" as const, shape: [2, 2], data: roundToDtype(Float32Array.of(0.1, 0.2, 0.3, 0.4), "bf16") },
        b1: { dtype: "f32" as const, shape: [2], data: Float32Array.of(1e-8, -3) }
      }
    }
    const bytes = encodePart(part)
    const back = Either.getOrThrow(decodePart(bytes))
    expect(back.name).toBe("layer3.expert5")
    expect(back.tensors.w1).toEqual(part.tensors.w1)
    expect(back.tensors.b1).toEqual(part.tensors.b1)
    expect(Array.from(encodePart(back))).toEqual(Array.from(bytes))
    const noName = decodePart(encodeSafetensors({ x: { dtype: "F32", shape: [1], data: Float32Array.of(1) } }))
    expect(Either.isLeft(noName) && noName.left.kind).toBe("BadMetadata")
  })
})

describe("safetensors: malformed files are refused with a typed error", () => {
  const ok = { t: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }
  it("a well-formed control decodes", () => expect(Either.isRight(decodeSafetensors(file(ok, f32Bytes(1, 2))))).toBe(true))
  it("fewer than 8 bytes", () => expectMalformed(new Uint8Array(5), "TooShort"))
  it("header length beyond the file", () => expectMalformed(file(ok, f32Bytes(1, 2), 500n), "HeaderOutOfBounds"))
  it("header length near 2^64", () => expectMalformed(file(ok, f32Bytes(1, 2), 2n ** 64n - 1n), "HeaderOutOfBounds"))
  it("header not JSON", () => expectMalformed(file('{"t": {', 8), "BadJson"))
  it("header not UTF-8", () => {
    const f = file("{}      ", 0)
    f[9] = 0xff
    expectMalformed(f, "BadJson")
  })
  it("header not an object", () => expectMalformed(file("[1,2]", 0), "BadHeader"))
  it("an entry that is not an object", () => expectMalformed(file({ t: 3 }, 0), "BadHeader", "t"))
  it("a negative or fractional shape", () => {
    expectMalformed(file({ t: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, 8), "BadHeader", "t")
    expectMalformed(file({ t: { dtype: "F32", shape: [1.5], data_offsets: [0, 8] } }, 8), "BadHeader", "t")
  })
  it("data_offsets of the wrong form or reversed", () => {
    expectMalformed(file({ t: { dtype: "F32", shape: [2], data_offsets: [0] } }, 8), "BadHeader", "t")
    expectMalformed(file({ t: { dtype: "F32", shape: [0], data_offsets: [8, 0] } }, 8), "BadHeader", "t")
  })
  it("metadata that is not a string map", () => expectMalformed(file({ ...ok, __metadata__: { n: 1 } }, f32Bytes(1, 2)), "BadMetadata"))
  it("an unknown dtype", () => {
    expectMalformed(file({ t: { dtype: "Q4", shape: [2], data_offsets: [0, 8] } }, 8), "UnknownDtype", "t")
    expectMalformed(file({ t: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, 8), "UnknownDtype", "t")
  })
  it("shape and offsets that disagree on the size", () => expectMalformed(file({ t: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8), "SizeMismatch", "t"))
  it("offsets past the buffer", () => expectMalformed(file({ t: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 8), "OffsetOutOfRange", "t"))
  it("overlapping tensors", () =>
    expectMalformed(
      file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 12),
      "OverlappingOffsets",
      "b"
    ))
  it("a hole between tensors", () =>
    expectMalformed(
      file({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, 12),
      "OffsetGap",
      "b"
    ))
  it("a hole at the start", () => expectMalformed(file({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8), "OffsetGap", "a"))
  it("trailing bytes after the last tensor", () => expectMalformed(file(ok, 12), "TrailingBytes"))
  it("a tensor named __proto__ cannot pollute anything", () => {
    const st = Either.getOrThrow(decodeSafetensors(file('{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32Bytes(7))))
    expect(Object.keys(st.tensors)).toEqual(["__proto__"])
    expect(({} as Record<string, unknown>).dtype).toBeUndefined()
  })

  it("any single corrupted byte is either still a valid file or a MalformedSafetensors, never an exception", () => {
    const good = encodeSafetensors({ a: { dtype: "F16", shape: [2, 3], data: new Float32Array(6).fill(0.5) }, b: { dtype: "F32", shape: [3], data: Float32Array.of(1, 2, 3) } }, { k: "v" })
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const bad = Uint8Array.from(good)
        bad[at] = value
        const r = parseSafetensors(bad)
        if (Either.isLeft(r)) expect(r.left._tag).toBe("MalformedSafetensors")
      }),
      { numRuns: 500 }
    )
  })
})
