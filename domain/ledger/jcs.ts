/**
 * RFC 8785 JSON Canonicalization Scheme. ECMAScript's own number and string serialisation is
 * exactly what the RFC prescribes, so only key ordering (by UTF-16 code units) and the refusal
 * of values JSON cannot represent are ours.
 */
export class NotCanonicalizable extends Error {
  readonly _tag = "NotCanonicalizable"
  constructor(readonly path: string, readonly reason: string) {
    super(`cannot canonicalize ${path || "<root>"}: ${reason}`)
  }
}

export const canonicalize = (value: unknown): string => write(value, () => "")

/** The path is built only when something is refused: canonicalising is on the audit's hot path. */
type Path = () => string

const write = (value: unknown, path: Path): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false"
    case "string":
      return JSON.stringify(value)
    case "number":
      if (!Number.isFinite(value)) throw new NotCanonicalizable(path(), `non-finite number ${value}`)
      return JSON.stringify(value)
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v, i) => write(v, () => `${path()}[${i}]`)).join(",")}]`
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) throw new NotCanonicalizable(path(), "not a plain object")
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, () => `${path()}.${k}`)}`).join(",")}}`
    }
    default:
      throw new NotCanonicalizable(path(), `unsupported type ${typeof value}`)
  }
}
