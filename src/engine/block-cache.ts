import { LRUCache } from 'lru-cache';
import { markImmutable, markVerified } from './record.js';

/**
 * Device blocks by block number, bounded in bytes (`cacheSize`). Index nodes and record
 * blocks share it. Counts hits and misses for stats().
 *
 * Session 4 tried a CLOCK table instead of lru-cache (a hit is two array loads instead of a
 * Map lookup and a list move): read-compare ratios against lmdb moved within this machine's
 * noise (get 0.92/1.09 against 0.89/0.90, seek 0.61/0.67 against 0.57/0.56, scan the same),
 * so the cache stays on lru-cache as the engine's issue asks.
 */
export class BlockCache {
  private readonly lru: LRUCache<number, Uint8Array>;
  hits = 0;
  misses = 0;
  /** The highest block number ever cached: no block above it can be in the cache. */
  private highest = -1;

  constructor(readonly maxBytes: number, readonly blockSize: number) {
    this.lru = new LRUCache<number, Uint8Array>({
      maxSize: Math.max(maxBytes, blockSize),
      sizeCalculation: (b) => b.length,
    });
  }

  get(block: number): Uint8Array | undefined {
    const b = this.lru.get(block);
    if (b) this.hits++;
    else this.misses++;
    return b;
  }

  /** Without touching the counters or the recency. */
  peek(block: number): Uint8Array | undefined {
    return this.lru.peek(block);
  }

  /** Counts a hit for a block found by peek and then read (its recency left as it was). */
  countHit(): void {
    this.hits++;
  }

  /**
   * `written`: the block is a copy of what this process wrote (a committed frame), not bytes
   * read back from the device; records decoded from it skip their checksum test. Otherwise
   * the block is bytes read from the device, which nothing writes into afterwards: each of
   * its records is verified the first time it is decoded from it, and not again (record.ts).
   */
  set(block: number, data: Uint8Array, written = false): void {
    if (written) markVerified(data);
    else markImmutable(data);
    this.lru.set(block, data);
    if (block > this.highest) this.highest = block;
  }

  /**
   * A frame this process wrote at block `firstBlock`: its first `keep` bytes (whole blocks)
   * are cached from one copy (a fresh array per block cost an off-heap allocation each; the
   * copy is freed once all its blocks are evicted, and they age together), and its other
   * blocks are dropped: what the cache holds there is from an earlier lap of the log.
   */
  setWritten(firstBlock: number, frame: Uint8Array, keep = frame.length): void {
    const bs = this.blockSize;
    if (keep > 0) {
      const copy = new Uint8Array(frame.subarray(0, keep));
      markVerified(copy);
      for (let i = 0; i < keep; i += bs) this.lru.set(firstBlock + i / bs, copy.subarray(i, i + bs));
      const last = firstBlock + keep / bs - 1;
      if (last > this.highest) this.highest = last;
    }
    if (keep < frame.length) this.drop(firstBlock + keep / bs, (frame.length - keep) / bs);
  }

  /**
   * Forgets blocks [first, first + count): the device range was written anew and they are not
   * replaced. Else, once the log wraps round, reads there would be served the bytes of an
   * earlier lap. Nothing to do before the log first wraps: no block at or past the head was
   * ever cached.
   */
  drop(first: number, count: number): void {
    const end = Math.min(first + count - 1, this.highest);
    for (let b = first; b <= end; b++) this.lru.delete(b);
  }

  clear(): void {
    this.lru.clear();
  }

  /** Cached bytes. */
  get size(): number {
    return this.lru.calculatedSize;
  }

  get hitRate(): number {
    const all = this.hits + this.misses;
    return all === 0 ? 0 : this.hits / all;
  }
}
