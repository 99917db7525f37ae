import fc from "fast-check"
import { describe, expect, it } from "@effect/vitest"
import { ReadWindows } from "../../../adapters/eventstore/read-windows.ts"

type Step = "record" | "move" | "end-batch" | "finish"

describe("read windows of a whole-log read", () => {
  it("never hand out a window that a started batch, or the batch being scanned, has records in (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<Step>("record", "record", "move", "end-batch", "finish"), { maxLength: 300 }), (steps) => {
        const windows = new ReadWindows()
        let current = windows.take(64, undefined)
        let scanning: Uint8Array[] = []
        const started: Uint8Array[][] = []
        const live = () => new Set([...scanning, ...started.flat()].map((p) => p.buffer))
        for (const step of steps) {
          switch (step) {
            case "record":
              scanning.push(current.subarray(0, 1))
              break
            case "move": {
              const next = windows.take(64, current)
              expect(live().has(next.buffer)).toBe(false)
              expect(next.buffer).not.toBe(current.buffer)
              current = next
              break
            }
            case "end-batch":
              if (scanning.length > 0) {
                windows.hold(scanning)
                started.push(scanning)
                scanning = []
              }
              break
            case "finish": {
              // Batches finish in the order they started, and between scans, as a reader finishes them.
              const done = scanning.length === 0 ? started.shift() : undefined
              if (done) windows.release(done)
            }
          }
        }
      }),
      { numRuns: 1000 }
    )
  })

  it("reuse a window once the read has moved past it and its batches are finished", () => {
    const windows = new ReadWindows()
    const first = windows.take(64, undefined)
    const batch = [first.subarray(0, 8), first.subarray(8, 16)]
    windows.hold(batch)
    const second = windows.take(64, first)
    expect(windows.take(64, second).buffer).not.toBe(first.buffer)
    windows.release(batch)
    const third = windows.take(64, second)
    expect(third.buffer).toBe(first.buffer)
    // A window too small for the read is not reused.
    expect(windows.take(128, third).buffer).not.toBe(second.buffer)
  })

  it("keep a window while any of the batches in it is unfinished", () => {
    const windows = new ReadWindows()
    const first = windows.take(64, undefined)
    const [a, b] = [[first.subarray(0, 8)], [first.subarray(8, 16)]]
    windows.hold(a)
    windows.hold(b)
    const second = windows.take(64, first)
    windows.release(a)
    expect(windows.take(64, second).buffer).not.toBe(first.buffer)
  })
})
