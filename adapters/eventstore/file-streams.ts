import type { IndexEntry, SegmentSummary } from "./file-index.ts"

/** Where a ledger stream stands: its revision (the 0-based index of its last event) and that event's seq. */
export type StreamPosition = { readonly revision: number; readonly last: number }

/**
 * Every stream's position: all the file store keeps in memory about the log's streams, one entry
 * per stream whatever the length of the log. The events themselves stay on disk, reached through
 * the segments' indexes.
 */
export class StreamTable {
  private readonly positions: Map<string, StreamPosition>

  constructor(from?: StreamTable) {
    this.positions = new Map(from?.positions)
  }

  get(stream: string): StreamPosition | undefined {
    return this.positions.get(stream)
  }

  revision(stream: string): number {
    return this.positions.get(stream)?.revision ?? -1
  }

  /** Record the event at `seq`, whose record starts at `offset`, as the next of `stream`; its index entry. */
  advance(stream: string, seq: number, offset: number): IndexEntry {
    const at = this.positions.get(stream)
    const entry = { offset, prev: at ? at.last : -1, revision: at ? at.revision + 1 : 0 }
    this.positions.set(stream, { revision: entry.revision, last: seq })
    return entry
  }

  /** Take the positions a sealed segment's summary records. */
  apply(summary: SegmentSummary): void {
    for (const [stream, last, revision] of summary.streams) this.positions.set(stream, { revision, last })
  }

  /** The summary's stream list for `streams`: their positions now. */
  summarize(streams: Iterable<string>): SegmentSummary["streams"] {
    return [...streams].map((s) => {
      const p = this.positions.get(s)!
      return [s, p.last, p.revision] as const
    })
  }

  /** Which stream's last event is at each seq: to follow index entries forward without reading events. */
  byLastSeq(): Map<number, string> {
    const out = new Map<number, string>()
    for (const [stream, p] of this.positions) out.set(p.last, stream)
    return out
  }
}
