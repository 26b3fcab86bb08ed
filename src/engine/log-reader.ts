import type { BlockDevice, BufferPool } from '../io/index.js';
import type { BlockCache } from './block-cache.js';

/**
 * Reads byte ranges of the log through the block cache, synchronously (the sync get path)
 * or asynchronously (one batch per range). Bytes of the frame being built are served from
 * memory, so the index can read the records and nodes of a commit before it is written.
 */
export class LogReader {
  /** The frame under construction: its device offset and bytes so far. */
  pending: { offset: number; bytes: Uint8Array; length: number } | null = null;
  private readonly bs: number;

  constructor(
    private readonly device: BlockDevice,
    private readonly cache: BlockCache,
    private readonly pool: BufferPool,
  ) {
    this.bs = device.geometry.blockSize;
  }

  readSync(offset: number, length: number): Uint8Array {
    const fromPending = this.fromPending(offset, length);
    if (fromPending) return fromPending;
    return this.assemble(offset, length, (runs) => {
      for (const r of runs) {
        const buf = this.pool.acquire(r.count * this.bs);
        try {
          const view = buf.subarray(0, r.count * this.bs);
          this.device.readSync(r.block * this.bs, view);
          this.keep(r, view.bytes);
        } finally {
          this.pool.release(buf);
        }
      }
    });
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const fromPending = this.fromPending(offset, length);
    if (fromPending) return fromPending;
    let missing: Run[] = [];
    const result = this.assemble(offset, length, (runs) => {
      missing = runs;
    });
    if (missing.length === 0) return result;
    const bufs = missing.map((r) => this.pool.acquire(r.count * this.bs));
    try {
      await this.device.submit(missing.map((r, i) => ({ op: 'read' as const, offset: r.block * this.bs, buffer: bufs[i]!.subarray(0, r.count * this.bs) })));
      missing.forEach((r, i) => this.keep(r, bufs[i]!.bytes));
    } finally {
      for (const b of bufs) this.pool.release(b);
    }
    // Blocks read just now were copied into `result` by keep().
    return result;
  }

  private fromPending(offset: number, length: number): Uint8Array | null {
    const p = this.pending;
    if (p && offset >= p.offset && offset + length <= p.offset + p.length) {
      return p.bytes.subarray(offset - p.offset, offset - p.offset + length);
    }
    return null;
  }

  /**
   * Builds the answer from cached blocks; hands the runs of missing blocks to `fetch`,
   * each with a place in the answer to copy into.
   */
  private assemble(offset: number, length: number, fetch: (runs: Run[]) => void): Uint8Array {
    const bs = this.bs;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    if (first === last) {
      const b = this.cache.get(first);
      if (b) return b.subarray(offset - first * bs, offset - first * bs + length);
    }
    const span = new Uint8Array((last - first + 1) * bs);
    const runs: Run[] = [];
    const maxBlocks = Math.max(1, Math.floor(this.device.geometry.maxTransfer / bs));
    for (let blk = first; blk <= last; blk++) {
      const b = this.cache.get(blk);
      if (b) {
        span.set(b, (blk - first) * bs);
        continue;
      }
      const prev = runs[runs.length - 1];
      if (prev && prev.block + prev.count === blk && prev.count < maxBlocks) prev.count++;
      else runs.push({ block: blk, count: 1, out: span, outOffset: (blk - first) * bs });
    }
    if (runs.length > 0) fetch(runs);
    return span.subarray(offset - first * bs, offset - first * bs + length);
  }

  /** Copies freshly read blocks into the answer and (unless the read is huge) the cache. */
  private keep(r: Run, bytes: Uint8Array): void {
    const bs = this.bs;
    const cacheable = r.count * bs <= this.cache.maxBytes / 8;
    for (let i = 0; i < r.count; i++) {
      const data = bytes.slice(i * bs, (i + 1) * bs);
      if (cacheable) this.cache.set(r.block + i, data);
      r.out.set(data, r.outOffset + i * bs);
    }
  }
}

interface Run {
  block: number;
  count: number;
  out: Uint8Array;
  outOffset: number;
}
