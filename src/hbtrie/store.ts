/**
 * The storage interface the HB+-trie writes its nodes through, and an in-memory implementation.
 *
 * The trie has no I/O of its own. It packs its nodes into whole blocks itself (a node never
 * crosses a block boundary), so a store only has to hand out block addresses, keep whole blocks,
 * and give back the bytes of a block from a given offset. Addresses are byte offsets (in the
 * engine: offsets in the device log) and are always multiples of `blockSize` for blocks; a node's
 * address is its block's address plus its offset inside the block.
 *
 * Calls per batch: one `allocateBlocks` and one `writeBlocks` (nothing at all for a batch that
 * changes nothing). Reads are synchronous; the trie caches nodes, so `read` is only called on a
 * cache miss.
 */

import { HBTrieError } from './errors.js';

export interface BlockWrite {
  /** Block address returned by allocateBlocks. */
  readonly addr: number;
  /**
   * Exactly blockSize bytes: a view of the trie's node cache memory, valid only during the
   * writeBlocks call (the cache reuses it later). A store that keeps the bytes copies them.
   */
  readonly data: Uint8Array;
}

export interface NodeStore {
  /** Block size in bytes: a power of two from 512 to 65536. Nodes never cross a block boundary. */
  readonly blockSize: number;
  /**
   * The bytes of the block containing `addr`, from `addr` to the end of that block (a view is
   * fine). The trie does not modify the result and copies what it keeps. Must be synchronous
   * (the engine serves it from its block cache). Throwing is allowed (e.g. an I/O error); the
   * error propagates to the trie's caller.
   */
  read(addr: number): Uint8Array;
  /**
   * Reserves `count` fresh blocks and returns their addresses (each a multiple of blockSize,
   * all distinct, never handed out before; ascending order is preferred but not required). Called
   * once per batch, before any node of the batch is serialized, because parents embed their
   * children's addresses.
   */
  allocateBlocks(count: number): number[];
  /**
   * Writes the blocks of one batch, all previously allocated; called once per batch. The data
   * must be copied, not kept (see BlockWrite.data).
   */
  writeBlocks(blocks: readonly BlockWrite[]): void;
}

export interface MemoryNodeStoreOptions {
  /** Default 4096. */
  blockSize?: number;
  /** Address of the first block (default 0). Must be a multiple of blockSize. */
  baseAddress?: number;
}

/** Blocks per storage chunk of a MemoryNodeStore. */
const CHUNK_BLOCKS = 256;

/** A NodeStore over in-memory blocks, for tests and benchmarks. */
export class MemoryNodeStore implements NodeStore {
  readonly blockSize: number;
  private readonly base: number;
  /** Block i is blocks[i] (a view into a storage chunk of CHUNK_BLOCKS blocks), once written. */
  private readonly blocks: (Uint8Array | undefined)[] = [];
  private readonly chunks: Uint8Array[] = [];
  private nextBlock = 0;
  /** Counters, for tests and benchmarks. */
  reads = 0;
  blocksWritten = 0;
  writeCalls = 0;

  constructor(opts: MemoryNodeStoreOptions = {}) {
    const bs = opts.blockSize ?? 4096;
    checkBlockSize(bs);
    this.blockSize = bs;
    const base = opts.baseAddress ?? 0;
    if (!Number.isSafeInteger(base) || base < 0 || base % bs !== 0) {
      throw new HBTrieError('INVALID_ARGUMENT', `baseAddress ${base} is not a non-negative multiple of the block size`);
    }
    this.base = base;
  }

  read(addr: number): Uint8Array {
    this.reads++;
    const rel = addr - this.base;
    const bi = Math.floor(rel / this.blockSize);
    const b = rel >= 0 ? this.blocks[bi] : undefined;
    if (b === undefined) throw new HBTrieError('CORRUPT', `HB+-trie node address ${addr} is not in a written block`, addr);
    return b.subarray(rel - bi * this.blockSize);
  }

  allocateBlocks(count: number): number[] {
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = this.base + (this.nextBlock++) * this.blockSize;
    return out;
  }

  writeBlocks(blocks: readonly BlockWrite[]): void {
    this.writeCalls++;
    for (const { addr, data } of blocks) {
      const rel = addr - this.base;
      if (rel < 0 || rel % this.blockSize !== 0 || rel / this.blockSize >= this.nextBlock) {
        throw new HBTrieError('INVALID_ARGUMENT', `block ${addr} was not allocated`);
      }
      if (data.length !== this.blockSize) throw new HBTrieError('INVALID_ARGUMENT', `block ${addr} has ${data.length} bytes`);
      const bi = rel / this.blockSize;
      if (this.blocks[bi] !== undefined) throw new HBTrieError('INVALID_ARGUMENT', `block ${addr} written twice`);
      const ci = Math.floor(bi / CHUNK_BLOCKS);
      // Not zero-filled: a block's bytes are written before they can be read.
      while (this.chunks.length <= ci) this.chunks.push(Buffer.allocUnsafeSlow(CHUNK_BLOCKS * this.blockSize));
      const o = (bi % CHUNK_BLOCKS) * this.blockSize;
      const block = this.chunks[ci]!.subarray(o, o + this.blockSize);
      block.set(data);
      this.blocks[bi] = block;
      this.blocksWritten++;
    }
  }

  /** The stored block at `addr` (the live buffer: tests flip bits in it). */
  blockAt(addr: number): Uint8Array {
    const rel = addr - this.base;
    const bi = Math.floor(rel / this.blockSize);
    const b = this.blocks[bi];
    if (b === undefined) throw new HBTrieError('INVALID_ARGUMENT', `no block at ${addr}`);
    return b;
  }

  /** Bytes of all blocks written so far. */
  get bytesStored(): number {
    return this.blocksWritten * this.blockSize;
  }
}

export function checkBlockSize(bs: number): void {
  if (!Number.isInteger(bs) || bs < 512 || bs > 65536 || (bs & (bs - 1)) !== 0) {
    throw new HBTrieError('INVALID_ARGUMENT', `block size ${bs} must be a power of two from 512 to 65536`);
  }
}
