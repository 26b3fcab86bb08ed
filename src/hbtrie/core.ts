/**
 * Configuration and node loading shared by lookups, batches and cursors.
 */

import { NodeCache } from './cache.js';
import { type Checksum, crc32c } from './crc32c.js';
import { corrupt, HBTrieError } from './errors.js';
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_KEY_LENGTH, MIN_CHUNK_SIZE } from './keys.js';
import { BNode, decodeNode, decodePiece, HEADER_SIZE, PTR_SIZE, ptrAt, Scratch, TRIE_HEADER_SIZE } from './node.js';
import { checkBlockSize, type NodeStore } from './store.js';

/**
 * Returns the full key stored at a value (a record address). Synchronous: the engine reads the
 * record (normally from its block cache). The trie calls it
 *  - once per `get` (to confirm the candidate; `find` does not call it),
 *  - once per existing entry that a batch operation lands on (to tell an update from a new key
 *    that shares the chunk, and to build the sub-trie that separates them),
 *  - at most once per bound when a cursor seeks (to place a bound that lands on a leaf value).
 * The returned array is not modified and not kept beyond the call that asked for it.
 */
export type KeyReader = (value: number) => Uint8Array;

export interface HBTrieOptions {
  store: NodeStore;
  keyReader: KeyReader;
  /** Bytes per key chunk, 4 to 64; default 8. Fixed for the life of an index. */
  chunkSize?: number;
  /**
   * Memory for cached nodes, in bytes; default 64 MiB, at most 2 GiB. A cached node costs its
   * serialized size (nodes are kept in their byte form) plus a small object, 8 to 16 bytes per
   * child pointer of a node a lookup went through, and 4 bytes per 16 entries of a large node
   * a lookup searched (its search samples; see cache.ts and samples.ts).
   */
  cacheBytes?: number;
  /** Older form of cacheBytes: a capacity in nodes, taken as that many blocks. */
  cacheNodes?: number;
  /** Largest key accepted; default and maximum 65535. */
  maxKeyLength?: number;
  /**
   * CRC32C of buf[start, end), used to checksum every node written and verify every node read
   * (about 4 KiB per changed leaf: at 1.7 GB/s, the JavaScript default is a large part of a
   * batch). Default: the JavaScript crc32c of this module. Pass a faster implementation of the
   * same function (e.g. a native SSE4.2 one); a different function makes nodes unreadable.
   */
  checksum?: Checksum;
}

export class Core {
  readonly store: NodeStore;
  readonly keyReader: KeyReader;
  /** Chunk size C. */
  readonly C: number;
  readonly blockSize: number;
  readonly maxKeyLength: number;
  /** Prefixes longer than this (bytes) are stored in prefix pieces instead of inline. */
  readonly inlineMax: number;
  /** Most entries a non-root node holds so that it fits a block. */
  readonly capacity: number;
  readonly cache: NodeCache;
  readonly checksum: Checksum;
  /** Scratch for the searched chunk as words (lookups only; see btree.ts). */
  readonly kw: Int32Array = new Int32Array(16);
  /** Batch scratch memory, reused from batch to batch (null while a batch holds it). */
  private scratch: Scratch | null = new Scratch();

  constructor(opts: HBTrieOptions) {
    const C = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(C) || C < MIN_CHUNK_SIZE || C > MAX_CHUNK_SIZE) {
      throw new HBTrieError('INVALID_ARGUMENT', `chunk size ${C} must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`);
    }
    if (typeof opts.keyReader !== 'function') throw new HBTrieError('INVALID_ARGUMENT', 'keyReader must be a function');
    const store = opts.store;
    checkBlockSize(store.blockSize);
    const mk = opts.maxKeyLength ?? MAX_KEY_LENGTH;
    if (!Number.isInteger(mk) || mk < 1 || mk > MAX_KEY_LENGTH) {
      throw new HBTrieError('INVALID_ARGUMENT', `maxKeyLength ${mk} must be from 1 to ${MAX_KEY_LENGTH}`);
    }
    const checksum = opts.checksum ?? crc32c;
    if (typeof checksum !== 'function') throw new HBTrieError('INVALID_ARGUMENT', 'checksum must be a function');
    this.checksum = checksum;
    this.store = store;
    this.keyReader = opts.keyReader;
    this.C = C;
    this.blockSize = store.blockSize;
    this.maxKeyLength = mk;
    this.inlineMax = store.blockSize >>> 2;
    this.capacity = Math.floor((store.blockSize - HEADER_SIZE) / (C + PTR_SIZE));
    const rootCap = Math.floor((store.blockSize - HEADER_SIZE - TRIE_HEADER_SIZE - this.inlineMax) / (C + PTR_SIZE));
    if (rootCap < 4) {
      throw new HBTrieError('INVALID_ARGUMENT', `block size ${store.blockSize} is too small for chunk size ${C}`);
    }
    const cacheBytes = opts.cacheBytes ?? (opts.cacheNodes !== undefined ? opts.cacheNodes * store.blockSize : 64 << 20);
    if (typeof cacheBytes !== 'number' || !(cacheBytes > 0)) throw new HBTrieError('INVALID_ARGUMENT', `cache size ${cacheBytes} must be a positive number`);
    this.cache = new NodeCache(cacheBytes, store.blockSize);
  }

  /** The node at `addr` (from the cache, or read, verified and cached). */
  load(addr: number): BNode {
    const hit = this.cache.get(addr);
    if (hit !== undefined) return hit;
    return this.loadMiss(addr);
  }

  /**
   * The node that entry i of `node` (a written node) points to, through `node.kids` when it was
   * looked up before (no cache lookup: a lookup follows object references down the trie).
   */
  child(node: BNode, i: number): BNode {
    const kids = node.kids;
    if (kids !== null) {
      const c = kids[i];
      if (c !== undefined && !c.dead) {
        c.hot = true;
        return c;
      }
    }
    const c = this.load(ptrAt(node, i));
    // Only nodes in the ring (which kills what it evicts), so that a kept reference never keeps
    // memory alive that the cache has let go.
    if (c.slab >= 0 && !node.dead) (node.kids ??= new Array<BNode | undefined>(node.n))[i] = c;
    return c;
  }

  private loadMiss(addr: number): BNode {
    if (!Number.isSafeInteger(addr) || addr < 0) throw new HBTrieError('INVALID_ARGUMENT', `bad node address ${addr}`);
    this.cache.misses++;
    const node = decodeNode(this.store.read(addr), addr, this.C, this.cache, this.checksum);
    if (node.pieces !== null) this.readPrefix(node);
    this.cache.set(addr, node);
    return node;
  }

  /** Follows the prefix-piece chain of a root node whose prefix is stored externally. */
  private readPrefix(node: BNode): void {
    const total = node.prefixLen * this.C;
    const prefix = new Uint8Array(total);
    const pieces: number[] = [];
    let at = node.pieces![0]!;
    let got = 0;
    while (at >= 0) {
      if (pieces.length > 2 * (total / 16 + 2)) throw corrupt(node.addr, 'prefix piece chain does not end');
      const p = decodePiece(this.store.read(at), at, this.C, this.checksum);
      if (got + p.data.length > total) throw corrupt(at, 'prefix pieces hold more bytes than the prefix');
      prefix.set(p.data, got);
      got += p.data.length;
      pieces.push(at, p.size);
      at = p.next;
    }
    if (got !== total) throw corrupt(node.addr, `prefix pieces hold ${got} of ${total} bytes`);
    node.setPrefix(prefix, prefix, 0);
    node.pieces = pieces;
  }

  /** Scratch memory for a batch (a fresh one if another batch, e.g. a nested one, holds it). */
  takeScratch(): Scratch {
    const s = this.scratch ?? new Scratch();
    this.scratch = null;
    s.reset();
    return s;
  }

  giveScratch(s: Scratch): void {
    this.scratch = s;
  }

  readKey(value: number): Uint8Array {
    const k = this.keyReader(value);
    if (!(k instanceof Uint8Array) || k.length === 0) {
      throw new HBTrieError('CORRUPT', `KeyReader returned no key for value ${value}`);
    }
    return k;
  }
}
