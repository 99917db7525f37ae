/**
 * One `.safetensors` file read in place: only its header is read when it is opened; each tensor is
 * read later by a positional read of exactly its byte range. Checkpoint shards are several GB each,
 * so nothing here ever holds a whole file. The layout is validated against the file's size when it
 * is opened, so a truncated or padded shard is refused before any tensor is served.
 */
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Either, Effect, type Scope } from "effect"
import { MAX_HEADER_BYTES, parseHeader, type StDType } from "../../domain/model/safetensors.ts"
import { CheckpointRefused, refused } from "../../domain/ports/checkpoint-source.ts"
import { causeText } from "../failure.ts"

export interface SafetensorsEntry {
  readonly name: string
  readonly dtype: StDType
  readonly shape: ReadonlyArray<number>
  /** Absolute positions in the file, end exclusive. */
  readonly start: number
  readonly end: number
}

export interface SafetensorsFile {
  /** The name used in messages (the file's base name unless given). */
  readonly name: string
  readonly size: number
  readonly metadata: Readonly<Record<string, string>>
  /** In file order. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>
  /** The tensor's stored bytes, read from its range only. */
  readonly read: (tensor: string) => Effect.Effect<Uint8Array, CheckpointRefused>
  /** The tensor's stored bytes read straight into `into` (exactly its size): no buffer of the reader's own. */
  readonly readInto: (tensor: string, into: Uint8Array) => Effect.Effect<void, CheckpointRefused>
  /** Closes the handle (also done when the scope ends); reads after it are refused. */
  readonly close: Effect.Effect<void>
}

/** One `read` call moves at most this much: Node refuses lengths over 2 GiB - 1. */
const READ_CHUNK = 1 << 30

/** Reads exactly `length` bytes at `position`, or fewer if the file ends first (the count is returned). */
const readAt = async (fh: fsp.FileHandle, into: Uint8Array, position: number): Promise<number> => {
  let done = 0
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, Math.min(READ_CHUNK, into.length - done), position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

const closeQuietly = (fh: fsp.FileHandle) => Effect.promise(() => fh.close().catch(() => undefined))

const closeOnce = (fh: fsp.FileHandle, state: { closed: boolean }) =>
  Effect.suspend(() => {
    if (state.closed) return Effect.void
    state.closed = true
    return closeQuietly(fh)
  })

interface Opened {
  readonly size: number
  readonly metadata: Readonly<Record<string, string>>
  readonly entries: ReadonlyMap<string, SafetensorsEntry>
}

const readLayout = (fh: fsp.FileHandle, name: string): Effect.Effect<Opened, CheckpointRefused> =>
  Effect.gen(function* () {
    const io = <A>(what: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (e) => refused(`cannot ${what} ${name}: ${causeText(e)}`, name) })
    const stat = yield* io("stat", () => fh.stat())
    if (!stat.isFile()) return yield* Effect.fail(refused(`${name} is not a regular file`, name))
    const size = stat.size
    const lengthBytes = new Uint8Array(8)
    const got = yield* io("read", () => readAt(fh, lengthBytes, 0))
    if (got < 8) return yield* Effect.fail(refused(`${name} is truncated: ${size} bytes, fewer than the 8-byte header length`, name))
    const n = new DataView(lengthBytes.buffer).getBigUint64(0, true)
    if (n > BigInt(size - 8)) {
      return yield* Effect.fail(refused(`${name} is truncated: its header length ${n} runs past the end of the ${size}-byte file`, name))
    }
    if (n > BigInt(MAX_HEADER_BYTES)) {
      return yield* Effect.fail(refused(`${name} has a ${n}-byte header, over the ${MAX_HEADER_BYTES}-byte limit`, name))
    }
    const headerLength = Number(n)
    const headerBytes = new Uint8Array(headerLength)
    const gotHeader = yield* io("read", () => readAt(fh, headerBytes, 8))
    if (gotHeader < headerLength) return yield* Effect.fail(refused(`${name} is truncated inside its header`, name))
    // Ranges are checked here, not by parseHeader, so that a short file is reported as truncated
    // at the first tensor (in file order) whose bytes are missing.
    const parsed = parseHeader(headerBytes)
    if (Either.isLeft(parsed)) {
      const e = parsed.left
      return yield* Effect.fail(refused(`${name}: ${e.message}`, name, e.tensor))
    }
    const dataStart = 8 + headerLength
    const dataLength = size - dataStart
    const inOrder = [...parsed.right.entries].sort((a, b) => a.begin - b.begin || a.end - b.end)
    const missing = inOrder.find((e) => e.end > dataLength)
    if (missing !== undefined) {
      return yield* Effect.fail(
        refused(
          `${name} is truncated: tensor ${JSON.stringify(missing.name)} needs bytes ${missing.begin}..${missing.end} of a ${dataLength}-byte data section`,
          name,
          missing.name
        )
      )
    }
    const covered = inOrder.at(-1)?.end ?? 0
    if (covered !== dataLength) {
      return yield* Effect.fail(refused(`${name} has ${dataLength - covered} bytes after its last tensor`, name))
    }
    const entries = new Map<string, SafetensorsEntry>()
    for (const e of inOrder) {
      entries.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, start: dataStart + e.begin, end: dataStart + e.end })
    }
    return { size, metadata: parsed.right.metadata, entries }
  })

/**
 * Opens `file` for the current scope, reading and validating its header and layout. `name` is how
 * messages call it (default: its base name, as a checkpoint's index does).
 */
export const openSafetensorsFile = (
  file: string,
  name: string = path.basename(file)
): Effect.Effect<SafetensorsFile, CheckpointRefused, Scope.Scope> =>
  Effect.gen(function* () {
    // The handle is closed at once when the layout is refused, not when the caller's scope ends.
    const { fh, opened, state } = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => fsp.open(file, "r"),
        catch: (e) =>
          (e as NodeJS.ErrnoException).code === "ENOENT"
            ? refused(`${name} does not exist`, name)
            : refused(`cannot open ${name}: ${causeText(e)}`, name)
      }).pipe(
        Effect.flatMap((fh) =>
          readLayout(fh, name).pipe(
            Effect.map((opened) => ({ fh, opened, state: { closed: false } })),
            Effect.tapError(() => closeQuietly(fh))
          )
        )
      ),
      ({ fh, state }) => closeOnce(fh, state)
    )
    const close = closeOnce(fh, state)
    const readInto = (tensor: string, into: Uint8Array): Effect.Effect<void, CheckpointRefused> =>
      Effect.suspend(() => {
        const entry = opened.entries.get(tensor)
        if (entry === undefined) return Effect.fail(refused(`${name} holds no tensor ${JSON.stringify(tensor)}`, name, tensor))
        if (state.closed) return Effect.fail(refused(`${name} is closed`, name, tensor))
        if (into.length !== entry.end - entry.start) return Effect.fail(refused(`tensor ${JSON.stringify(tensor)} of ${name} is ${entry.end - entry.start} bytes, not ${into.length}`, name, tensor))
        return Effect.tryPromise({
          try: () => readAt(fh, into, entry.start),
          catch: (e) => refused(`cannot read tensor ${JSON.stringify(tensor)} from ${name}: ${causeText(e)}`, name, tensor)
        }).pipe(
          Effect.filterOrFail(
            (got) => got === into.length,
            // The file was cut short after it was opened.
            () => refused(`${name} is truncated: tensor ${JSON.stringify(tensor)} ends past the end of the file`, name, tensor)
          ),
          Effect.asVoid
        )
      })
    const read = (tensor: string): Effect.Effect<Uint8Array, CheckpointRefused> =>
      Effect.suspend(() => {
        const entry = opened.entries.get(tensor)
        const out = new Uint8Array(entry === undefined ? 0 : entry.end - entry.start)
        return Effect.as(readInto(tensor, out), out)
      })
    return { name, size: opened.size, metadata: opened.metadata, entries: opened.entries, read, readInto, close }
  })
