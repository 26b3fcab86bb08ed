/**
 * Space-accounting changes of a commit, applied to the per-segment live/stale counters once
 * the commit is durable: bytes at an offset become live, move from live to stale, or are
 * stale from the start (headers, padding). Kept as one flat number array (offset, bytes,
 * kind triples): a batched put adds two changes, and an array per change was measurable
 * garbage-collector work on the write path.
 */
export const ADD_LIVE = 0;
export const MAKE_STALE = 1;
export const ADD_STALE = 2;
export type DeltaKind = typeof ADD_LIVE | typeof MAKE_STALE | typeof ADD_STALE;

export class SpaceDeltas {
  private readonly d: number[] = [];

  add(offset: number, bytes: number, kind: DeltaKind): void {
    this.d.push(offset, bytes, kind);
  }

  /** Appends every change of `other`. */
  addAll(other: SpaceDeltas): void {
    for (let i = 0; i < other.d.length; i++) this.d.push(other.d[i]!);
  }

  /** Applies the changes to per-segment counters; offsets outside the log clamp to its ends. */
  applyTo(live: Float64Array, stale: Float64Array, logStart: number, segmentSize: number): void {
    const d = this.d;
    const last = live.length - 1;
    for (let i = 0; i < d.length; i += 3) {
      const seg = Math.min(last, Math.max(0, Math.floor((d[i]! - logStart) / segmentSize)));
      const bytes = d[i + 1]!;
      const kind = d[i + 2]!;
      if (kind === ADD_LIVE) {
        live[seg]! += bytes;
      } else if (kind === MAKE_STALE) {
        live[seg] = Math.max(0, live[seg]! - bytes);
        stale[seg]! += bytes;
      } else {
        stale[seg]! += bytes;
      }
    }
  }
}
