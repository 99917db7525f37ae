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

/**
 * Canonicalising is on the hot path of every append and every verified record, so the writer
 * builds one string by concatenation, sorts only objects whose keys are out of order, and works
 * out the path of a refused value only while the refusal travels back up.
 */
export const canonicalize = (value: unknown): string => write(value)

/** Re-throw a refusal from inside `step` (a key or an index) with `step` put before its path. */
const under = (step: string, e: unknown): never => {
  throw e instanceof NotCanonicalizable ? new NotCanonicalizable(step + e.path, e.reason) : e
}

/** Characters JSON.stringify escapes in a string: `"`, `\`, controls, and (lone) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/** JSON.stringify of a string, without its cost when nothing needs escaping. */
const quote = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`)

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const write = (value: unknown): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false"
    case "string":
      return quote(value)
    case "number":
      if (!Number.isFinite(value)) throw new NotCanonicalizable("", `non-finite number ${value}`)
      // A finite number's string form is the one JSON.stringify (and the RFC) gives it.
      return `${value}`
    case "object":
      return Array.isArray(value) ? writeArray(value) : writeObject(value)
    default:
      throw new NotCanonicalizable("", `unsupported type ${typeof value}`)
  }
}

const writeArray = (value: ReadonlyArray<unknown>): string => {
  let out = "["
  for (let i = 0; i < value.length; i++) {
    if (i > 0) out += ","
    // A hole is written as nothing, as Array.prototype.join writes it.
    if (!(i in value)) continue
    try {
      out += write(value[i])
    } catch (e) {
      under(`[${i}]`, e)
    }
  }
  return out + "]"
}

const writeObject = (value: object): string => {
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) throw new NotCanonicalizable("", "not a plain object")
  const keys = Object.keys(value)
  for (let i = 1; i < keys.length; i++)
    if (keys[i - 1]! > keys[i]!) {
      keys.sort(byCodeUnits)
      break
    }
  let out = "{"
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k]
    if (v === undefined) continue
    if (out.length > 1) out += ","
    try {
      out += `${quote(k)}:${write(v)}`
    } catch (e) {
      under(`.${k}`, e)
    }
  }
  return out + "}"
}
