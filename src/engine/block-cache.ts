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
   * Caches the blocks of a frame this process wrote, from one copy of it: a fresh array per
   * block cost an off-heap allocation each. The copy is freed once all its blocks are evicted
   * (they were cached together, so they age together).
   */
  setWritten(firstBlock: number, frame: Uint8Array): void {
    const copy = new Uint8Array(frame);
    markVerified(copy);
    const bs = this.blockSize;
    let b = firstBlock;
    for (let i = 0; i < copy.length; i += bs, b++) this.lru.set(b, copy.subarray(i, i + bs));
    if (b - 1 > this.highest) this.highest = b - 1;
  }

  /**
   * Forgets blocks [first, first + count): the device range was written anew and they are not
   * replaced (a frame too large to cache). Else, once the log wraps round, reads there would
   * be served the bytes of an earlier lap. Nothing to do before the log first wraps: no block
   * at or past the head was ever cached.
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
