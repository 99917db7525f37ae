/**
 * The read windows of one whole-log read, in shared memory (so that the workers check records
 * where they lie), reused once the read has moved past a window and every batch with records in
 * it is finished (a window whose batches all finished before the read moved past it is left to
 * the garbage collector). The read then holds a few windows whatever the length of the log, and touches
 * fresh memory only while it warms up. A window is never reused while a batch that may still be
 * checked or parsed lies in it: a worker's bytes never change under it.
 */
export class ReadWindows {
  private readonly free: SharedArrayBuffer[] = []
  /** Unfinished batches per window. */
  private readonly holders = new Map<ArrayBufferLike, number>()
  /** Windows the read has moved past. */
  private readonly passed = new Set<ArrayBufferLike>()

  /**
   * A window of `size` bytes for the reader, which has moved past `previous` (if any). A window
   * is freed only by `release`, never here: the batch being scanned may have records in the
   * window just passed, and is held only once its scan ends.
   */
  take(size: number, previous: Uint8Array | undefined): Buffer {
    if (previous !== undefined) this.passed.add(previous.buffer)
    const k = this.free.findIndex((w) => w.byteLength >= size)
    const window = k === -1 ? new SharedArrayBuffer(size) : this.free.splice(k, 1)[0]!
    return Buffer.from(window, 0, size)
  }

  /** A batch with these payloads has started. */
  hold(payloads: ReadonlyArray<Uint8Array>): void {
    for (const w of windowsOf(payloads)) this.holders.set(w, (this.holders.get(w) ?? 0) + 1)
  }

  /**
   * A batch `hold` was called for is finished: nothing reads its payloads any more. Called
   * between scans, so every batch with records in a window is held by then.
   */
  release(payloads: ReadonlyArray<Uint8Array>): void {
    for (const w of windowsOf(payloads)) {
      const n = this.holders.get(w)! - 1
      if (n > 0) this.holders.set(w, n)
      else {
        this.holders.delete(w)
        if (this.passed.delete(w) && w instanceof SharedArrayBuffer) this.free.push(w)
      }
    }
  }
}

/** The distinct buffers payloads lie in: consecutive payloads mostly share one. */
const windowsOf = (payloads: ReadonlyArray<Uint8Array>): ArrayBufferLike[] => {
  const out: ArrayBufferLike[] = []
  for (const p of payloads) if (out[out.length - 1] !== p.buffer && !out.includes(p.buffer)) out.push(p.buffer)
  return out
}
