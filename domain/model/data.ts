/** Byte-level training data: windows of text as next-token batches, drawn deterministically. */
import type { Prng } from "./prng.ts"
import type { TrainBatch } from "./train.ts"

export const textBytes = (text: string): Uint8Array => new TextEncoder().encode(text)

/** The window of `seq` inputs starting at `start`, and the `seq` bytes after each as targets. */
const window = (data: Uint8Array, start: number, seq: number, inputs: number[], targets: number[]) => {
  for (let t = 0; t < seq; t++) {
    inputs.push(data[start + t]!)
    targets.push(data[start + t + 1]!)
  }
}

/** `batch` windows at random offsets (needs at least seq + 1 bytes). */
export const sampleBatch = (data: Uint8Array, batch: number, seq: number, rng: Prng): TrainBatch => {
  if (data.length < seq + 1) throw new RangeError(`${data.length} bytes cannot fill a window of ${seq} + 1`)
  const inputs: number[] = []
  const targets: number[] = []
  for (let b = 0; b < batch; b++) window(data, rng.int(data.length - seq), seq, inputs, targets)
  return { batch, seq, tokens: inputs, targets }
}

/** Consecutive non-overlapping windows covering the data, as batches (the last may be smaller). */
export const sequentialBatches = (data: Uint8Array, batch: number, seq: number): ReadonlyArray<TrainBatch> => {
  const starts: number[] = []
  for (let s = 0; s + seq < data.length; s += seq) starts.push(s)
  const out: TrainBatch[] = []
  for (let i = 0; i < starts.length; i += batch) {
    const group = starts.slice(i, i + batch)
    const inputs: number[] = []
    const targets: number[] = []
    for (const s of group) window(data, s, seq, inputs, targets)
    out.push({ batch: group.length, seq, tokens: inputs, targets })
  }
  return out
}
