import { ForestError } from '../errors.js';
import type { BlockDevice, BufferPool, DeviceBuffer } from '../io/index.js';
import type { BlockCache } from './block-cache.js';
import { addressOffset, addressSize, decodeRecord, peekRecordSize, RECORD_HEADER, type DecodedRecord } from './record.js';

/** The frame under construction as the reader sees it (a FrameBuilder: `bytes` is complete when read). */
export interface PendingFrame {
  readonly offset: number;
  readonly bytes: Uint8Array;
  readonly length: number;
}

/**
 * Reads byte ranges of the log through the block cache, synchronously (the sync get path)
 * or asynchronously (one batch per range). Bytes of the frame being built are served from
 * memory, so the index can read the records and nodes of a commit before it is written.
 *
 * A range inside one cached block is a view of that block (no copy); a range across blocks
 * is copied into an array of exactly its length.
 */
export class LogReader {
  /** The frame under construction: its device offset and bytes so far. */
  pending: PendingFrame | null = null;
  private readonly bs: number;
  private readonly maxBlocks: number;

  constructor(
    private readonly device: BlockDevice,
    private readonly cache: BlockCache,
    private readonly pool: BufferPool,
  ) {
    this.bs = device.geometry.blockSize;
    this.maxBlocks = Math.max(1, Math.floor(device.geometry.maxTransfer / this.bs));
  }

  /**
   * The record a packed index address names, decoded and verified; CORRUPT naming `path` and
   * the offset if it is damaged. A record inside one cached block is decoded in place: no
   * copy, no view of the block made first, no message built unless it fails.
   */
  recordSync(packed: number, path: string, into?: DecodedRecord): DecodedRecord {
    const offset = addressOffset(packed);
    const size = addressSize(packed);
    if (size > 0 && this.pending === null) {
      const first = Math.floor(offset / this.bs);
      const at = offset - first * this.bs;
      if (at + size <= 2 * this.bs) {
        const b = this.cache.get(first);
        if (b !== undefined) {
          if (at + size <= this.bs) return decodeRecord(b, at, path, offset, into);
          // A record across two blocks cached as adjacent views of one buffer (a written
          // frame's copy) is decoded where it lies, not copied out and checked again (about
          // 3% of records, 7% of a scan's time).
          const n = this.cache.peek(first + 1);
          if (n !== undefined && n.buffer === b.buffer && n.byteOffset === b.byteOffset + this.bs) {
            return decodeRecord(new Uint8Array(b.buffer, b.byteOffset, this.bs + n.length), at, path, offset, into);
          }
        }
      }
    }
    const length = this.recordLength(offset, size, path, size > 0 ? null : this.readSync(offset, RECORD_HEADER));
    return decodeRecord(this.readSync(offset, length), 0, path, offset, into);
  }

  /**
   * Loads the cache lines of the cached records at packed addresses addrs[0, n), all
   * together, so that their cache misses overlap rather than follow one another (a range
   * calls this for the records it will decode next: after a load in random order they lie
   * scattered over the cache's blocks). JavaScript has no prefetch instruction; a load whose
   * result is only summed is the nearest thing, and it overlaps with others only in a loop
   * short enough that many of them are in flight: the blocks are found first, then their
   * bytes loaded. blocks[0, n) are set: record i's block, for recordIn to decode it from
   * without finding the block again, or undefined (not cached, or not looked up). Returns
   * the sum of the bytes loaded, for the caller to keep so that the loads are not optimized
   * away.
   *
   * Records that lie close together (written in key order) are left alone: the hardware's
   * prefetcher streams them already, and touching cost a key-order scan 8–15%.
   */
  touchRecords(addrs: Float64Array, n: number, blocks: (Uint8Array | undefined)[]): number {
    if (n < 2 || this.pending !== null || clustered(addrs, n)) {
      // Not looked up: recordIn finds them itself. Set all the same, so that no block of an
      // earlier burst is left where a later record would take it for its own.
      blocks.fill(undefined, 0, n);
      return 0;
    }
    const bs = this.bs;
    for (let i = 0; i < n; i++) blocks[i] = this.cache.peek(Math.floor(addressOffset(addrs[i]!) / bs));
    let t = 0;
    for (let i = 0; i < n; i++) {
      const b = blocks[i];
      if (b === undefined) continue;
      const a = addrs[i]!;
      const at = addressOffset(a) % bs;
      const size = addressSize(a);
      let end = at + (size === 0 ? 256 : size); // 0: a large record (its size is in its header)
      if (end > b.length) end = b.length;
      for (let o = at; o < end; o += 64) t += b[o]!;
      t += b[end - 1]!;
    }
    return t;
  }

  /**
   * recordSync for a record whose block touchRecords found (`block`, or undefined). A record
   * inside it is decoded there: counted as a cache hit, but its block's recency is not
   * refreshed. A full scan after a random load refreshed every block once per record (200,000
   * moves through lru-cache's list, cold in memory: 13.7 of the 218 ms a profiled first scan
   * took), and a scan that reorders the whole cache is what an LRU should be spared anyway.
   * Point reads, blocks a range loads from the device, and ranges over records that lie
   * together (not touched: read through recordSync, a refresh per record of a block just
   * refreshed) still refresh it.
   */
  recordIn(packed: number, block: Uint8Array | undefined, path: string, into?: DecodedRecord): DecodedRecord {
    if (block !== undefined && this.pending === null) {
      const offset = addressOffset(packed);
      const at = offset % this.bs;
      const size = addressSize(packed);
      if (size > 0 && at + size <= block.length) {
        this.cache.countHit();
        return decodeRecord(block, at, path, offset, into);
      }
    }
    return this.recordSync(packed, path, into);
  }

  /** recordSync without blocking the event loop on the device. */
  async record(packed: number, path: string): Promise<DecodedRecord> {
    const offset = addressOffset(packed);
    const size = addressSize(packed);
    const length = this.recordLength(offset, size, path, size > 0 ? null : await this.read(offset, RECORD_HEADER));
    return decodeRecord(await this.read(offset, length), 0, path, offset);
  }

  /** Bytes to read for a record: its packed size, else the size in its header, within the device. */
  private recordLength(offset: number, packedSize: number, path: string, header: Uint8Array | null): number {
    let size = packedSize;
    if (size === 0 && header !== null) size = peekRecordSize(header, 0);
    if (size <= 0) throw new ForestError('CORRUPT', `${path}: the record at ${offset} has a damaged header`);
    return Math.min(size, this.device.geometry.capacity - offset);
  }

  /** The bytes without any device read: from the frame being built or one cached block. */
  private served(offset: number, length: number): Uint8Array | null {
    const p = this.pending;
    if (p !== null && offset >= p.offset && offset + length <= p.offset + p.length) return fromPending(p, offset, length);
    const first = Math.floor(offset / this.bs);
    if (offset + length <= (first + 1) * this.bs) {
      const b = this.cache.get(first);
      if (b !== undefined) {
        const o = offset - first * this.bs;
        return b.subarray(o, o + length);
      }
    }
    return null;
  }

  readSync(offset: number, length: number): Uint8Array {
    const hit = this.served(offset, length);
    if (hit !== null) return hit;
    const bs = this.bs;
    const out = new Uint8Array(length);
    const runs = this.gather(offset, length, out);
    for (const r of runs) {
      const buf = this.pool.acquire(r.count * bs);
      try {
        const view = buf.subarray(0, r.count * bs);
        this.device.readSync(r.block * bs, view);
        this.keep(r, view.bytes, offset, out);
      } finally {
        this.pool.release(buf);
      }
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const hit = this.served(offset, length);
    if (hit !== null) return hit;
    const bs = this.bs;
    const out = new Uint8Array(length);
    const runs = this.gather(offset, length, out);
    if (runs.length === 0) return out;
    const bufs: DeviceBuffer[] = [];
    try {
      for (const r of runs) bufs.push(this.pool.acquire(r.count * bs));
      await this.device.submit(runs.map((r, i) => ({ op: 'read' as const, offset: r.block * bs, buffer: bufs[i]!.subarray(0, r.count * bs) })));
      runs.forEach((r, i) => this.keep(r, bufs[i]!.bytes, offset, out));
    } finally {
      for (const b of bufs) this.pool.release(b);
    }
    return out;
  }

  /**
   * Copies the cached parts of [offset, offset + length) into `out`; returns the runs of
   * blocks that are missing (each at most one maximum transfer long).
   */
  private gather(offset: number, length: number, out: Uint8Array): Run[] {
    const bs = this.bs;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    const runs: Run[] = [];
    let prev: Run | null = null;
    for (let blk = first; blk <= last; blk++) {
      const b = this.cache.get(blk);
      if (b !== undefined) {
        copyPart(b, blk * bs, offset, length, out);
        continue;
      }
      if (prev !== null && prev.block + prev.count === blk && prev.count < this.maxBlocks) prev.count++;
      else runs.push((prev = { block: blk, count: 1 }));
    }
    return runs;
  }

  /** Copies freshly read blocks into the answer and (unless the read is huge) the cache. */
  private keep(r: Run, bytes: Uint8Array, offset: number, out: Uint8Array): void {
    const bs = this.bs;
    const start = r.block * bs;
    copyPart(bytes.subarray(0, r.count * bs), start, offset, out.length, out);
    if (r.count * bs > this.cache.maxBytes / 8) return;
    for (let i = 0; i < r.count; i++) this.cache.set(r.block + i, bytes.slice(i * bs, (i + 1) * bs));
  }
}

/** Records closer than this on average (in log bytes) are not touched (touchRecords). */
const CLUSTERED_BYTES = 512;

/** Whether the records at addrs[0, n) lie close together in the log, in order. */
function clustered(addrs: Float64Array, n: number): boolean {
  const span = addressOffset(addrs[n - 1]!) - addressOffset(addrs[0]!);
  return span >= 0 && span < n * CLUSTERED_BYTES;
}

interface Run {
  block: number;
  count: number;
}

/** A copy: the frame's memory is reused once it is written (recycleFrame), so no view of it may escape. */
function fromPending(p: PendingFrame, offset: number, length: number): Uint8Array {
  return p.bytes.slice(offset - p.offset, offset - p.offset + length);
}

/** Copies the overlap of `src` (device bytes from `srcStart`) and [offset, offset + length) into out. */
function copyPart(src: Uint8Array, srcStart: number, offset: number, length: number, out: Uint8Array): void {
  const from = Math.max(srcStart, offset);
  const to = Math.min(srcStart + src.length, offset + length);
  if (to > from) out.set(src.subarray(from - srcStart, to - srcStart), from - offset);
}
