/**
 * The HB+-trie (ForestDB, IEEE Trans. Computers 2016): a trie whose nodes are B+-trees keyed by
 * fixed-size chunks of the (encoded) key, persisted copy-on-write through a NodeStore.
 *
 * The object holds configuration and the node cache, not a root: every call takes the
 * root address to work on, and every change returns a new one, so any number of old roots
 * (snapshots) stay readable side by side.
 *
 * Whole keys are not stored in the index. A lookup descends by chunks and ends on a *candidate*
 * value, which is the right one if the key is present at all: `find` returns the candidate
 * without reading anything else (the engine confirms it when it reads the record, which it does
 * anyway), `get` confirms it by reading the key through the KeyReader (one key read per call).
 */

import { Batch, type BatchOp, type BatchResult, checkOps } from './batch.js';
import { findExact8, findExactIn, keyWords, upperBound8, upperBoundAt } from './btree.js';
import { Core, type HBTrieOptions } from './core.js';
import { HBTrieError } from './errors.js';
import { checkKey, cmpKeyChunk, keysEqual } from './keys.js';
import { check, collectNodes, type CheckOptions, type TrieStats } from './inspect.js';
import { FLAG_EXTERNAL_PREFIX, FLAG_ROOT, HEADER_SIZE, HOT_MARK, KIDS_MARK, readPtr, SIDE_REF, TRIE_HEADER_SIZE, TYPE_INTERNAL } from './node.js';
import { sampledRange, sampleCount } from './samples.js';
import { Cursor, type RangeOptions } from './iterator.js';
import type { BNode } from './node.js';

export class HBTrie {
  /** Configuration, cache and node loading (exposed for tools: inspect.ts, the engine's checker). */
  readonly core: Core;
  /**
   * The root node of the last lookup, while it stays in the cache's ring: lookups against the
   * same root (the common case) skip the cache's map. (A node's address never changes and a
   * written node is immutable; an evicted node is marked dead, a moved one updates its fields.)
   */
  private top: BNode | null = null;

  constructor(opts: HBTrieOptions) {
    this.core = new Core(opts);
  }

  get chunkSize(): number {
    return this.core.C;
  }

  get blockSize(): number {
    return this.core.blockSize;
  }

  get maxKeyLength(): number {
    return this.core.maxKeyLength;
  }

  /**
   * The candidate value for `key`: the value of the only entry `key` can be, or undefined when the
   * key is certainly absent. Reads no key: the caller must confirm the candidate by comparing
   * `key` with the key stored at the value (it may belong to another key that shares the chunks
   * the trie looked at).
   */
  find(root: number | null, key: Uint8Array): number | undefined {
    checkKey(key, this.core.maxKeyLength);
    if (root === null) return undefined;
    const core = this.core;
    const cache = core.cache;
    const C = core.C;
    const kw = core.kw;
    // The walk goes by location: it reads each node's header and entries from its bytes in the
    // cache's memory, and finds each child where an earlier lookup found it when it can (the
    // parent's side entries; see cache.ts), so a warm lookup touches the nodes' bytes and little
    // else. (u8, dv): the memory; b: the node's offset in it; s: its slab, -1 outside the ring.
    let top = this.top;
    if (top === null || top.addr !== root || top.dead || top.slab < 0) {
      top = core.load(root);
      this.top = top;
    }
    let u8 = top.u8;
    let dv = top.dv;
    let b = top.base;
    let s = top.slab;
    // Where the current node's address can be read (its parent's pointer), for the rare node
    // whose prefix is in pieces.
    let pdv: DataView | null = null;
    let pslot = 0;
    let L = 0;
    for (;;) {
      // (Written only when clear: a lookup leaves the node's cache line clean.)
      if (u8[b + HOT_MARK] === 0) u8[b + HOT_MARK] = 1;
      const n = u8[b + 6]! | (u8[b + 7]! << 8);
      const flags = u8[b + 13]!;
      let ko = b + HEADER_SIZE;
      if ((flags & FLAG_ROOT) !== 0) {
        // A trie node's root: its level, and the skipped prefix.
        L = dv.getUint32(b + 16, true);
        const st = L - dv.getUint32(b + 20, true);
        ko += TRIE_HEADER_SIZE;
        if ((flags & FLAG_EXTERNAL_PREFIX) !== 0) {
          ko += 8;
          const P = core.load(pdv === null ? root : readPtr(pdv, pslot)).prefix;
          for (let p = st, o = 0; p < L; p++, o += C) if (cmpKeyChunk(key, p, C, P, o) !== 0) return undefined;
        } else {
          // The prefix's chunks are all continuing ones (marker C): a key that ends within
          // them does not match, and one that does not compares key bytes only.
          const D = C - 1;
          if (key.length <= L * D) return undefined;
          for (let p = st; p < L; p++, ko += C) {
            if (u8[ko + D] !== C) return undefined;
            for (let j = 0, q = p * D; j < D; j++) if (key[q + j] !== u8[ko + j]) return undefined;
          }
        }
        keyWords(key, L, C, kw);
      }
      const po = ko + n * C;
      const internal = u8[b + 5] === TYPE_INTERNAL;
      // The node's side region (see cache.ts): its search samples if it is large, and where
      // its children were found.
      const G = sampleCount(n);
      let ref = 0;
      if (s >= 0) {
        ref = dv.getUint32(b + SIDE_REF, true);
        if (ref === 0 && G > 0) ref = cache.region(s, b, ko, n, C, internal);
      }
      let lo = 0;
      let hi = n;
      if (G > 0 && ref !== 0) {
        const r = sampledRange(cache.side[s]!, ref - 1, G, kw[0]!, n);
        lo = (r / 65536) | 0;
        hi = r & 0xffff;
      }
      let i: number;
      if (internal) {
        i = (C === 8 ? upperBound8(dv, ko, lo, hi, kw[0]!, kw[1]!) : upperBoundAt(dv, u8, ko, hi, kw, C, lo)) - 1;
        if (i < 0) i = 0;
      } else {
        i = C === 8 ? findExact8(dv, ko, lo, hi, kw[0]!, kw[1]!) : findExactIn(dv, u8, ko, lo, hi, kw, C);
        if (i < 0) return undefined;
        if (dv.getInt32(po + 8 * i + 4, true) >= 0) return readPtr(dv, po + 8 * i); // a value
      }
      // Down to the node entry i points to: where a previous lookup found it, if it is still
      // there (its slab's epoch unchanged), else through the cache.
      const slot = po + 8 * i;
      if (ref !== 0 && u8[b + KIDS_MARK] !== 0) {
        const side = cache.side[s]!;
        const k = ref - 1 + G + 2 * i;
        const loc = side[k]!;
        const ep = side[k + 1]!;
        if (ep !== 0 && cache.epochs[loc >>> 20] === ep) {
          pdv = dv;
          pslot = slot;
          s = loc >>> 20;
          b = loc & 0xfffff;
          const m = cache.slabs[s]!;
          u8 = m.u8;
          dv = m.dv;
          continue;
        }
      }
      const ps = s;
      const pe = s >= 0 ? cache.epochs[s]! : 0;
      const c = core.load(readPtr(dv, slot));
      if (ps >= 0 && c.slab >= 0 && cache.epochs[ps] === pe) {
        // (The parent has not moved: b and i still say where its side entries go.)
        let r = dv.getUint32(b + SIDE_REF, true);
        if (r === 0 || u8[b + KIDS_MARK] === 0) r = cache.region(ps, b, ko, n, C, true);
        const side = cache.side[ps]!;
        const k = r - 1 + G + 2 * i;
        side[k] = (c.slab << 20) | c.base;
        side[k + 1] = cache.epochs[c.slab]!;
      }
      pdv = dv;
      pslot = slot;
      u8 = c.u8;
      dv = c.dv;
      b = c.base;
      s = c.slab;
    }
  }

  /** The value stored for `key`, confirmed through the KeyReader (one key read), or undefined. */
  get(root: number | null, key: Uint8Array): number | undefined {
    const v = this.find(root, key);
    if (v === undefined) return undefined;
    return keysEqual(this.core.readKey(v), key) ? v : undefined;
  }

  /**
   * Applies `ops` (strictly ascending keys; `{ key, value }` stores, `{ key, remove: true }`
   * removes) to the trie at `root` and writes the changed nodes (one allocateBlocks and one
   * writeBlocks call). Validates the whole batch first: on a bad batch it throws and writes
   * nothing. The trie at `root` is never modified.
   */
  applyBatch(root: number | null, ops: readonly BatchOp[]): BatchResult {
    checkOps(ops, this.core.maxKeyLength);
    if (root !== null && (!Number.isSafeInteger(root) || root < 0)) {
      throw new HBTrieError('INVALID_ARGUMENT', `bad root address ${root}`);
    }
    const scratch = this.core.takeScratch();
    try {
      return new Batch(this.core, ops, scratch).run(root);
    } catch (e) {
      // The batch recurses once per trie level. Nothing is written before the end of a batch,
      // so the index is unchanged.
      if (e instanceof RangeError && /call stack/i.test(e.message)) {
        throw new HBTrieError('TOO_DEEP', 'the trie is too deep for this batch (keys that are long chains of prefixes of one another); nothing was written');
      }
      throw e;
    } finally {
      this.core.giveScratch(scratch);
    }
  }

  /** Same as applyBatch. */
  apply(root: number | null, ops: readonly BatchOp[]): BatchResult {
    return this.applyBatch(root, ops);
  }

  /** Insert or update one key (a batch of one). */
  put(root: number | null, key: Uint8Array, value: number): BatchResult {
    return this.applyBatch(root, [{ key, value }]);
  }

  /** Remove one key (a batch of one); removing a missing key changes nothing. */
  remove(root: number | null, key: Uint8Array): BatchResult {
    return this.applyBatch(root, [{ key, remove: true }]);
  }

  /** Values in key order within the bounds (see RangeOptions). Lazy. */
  range(root: number | null, opts: RangeOptions = {}): Cursor {
    return new Cursor(this.core, root, opts);
  }

  /**
   * Walks every node reachable from `root`, checks the structure (and with `{ keys: true }` every
   * key against its path and the order, one KeyReader call per key) and returns statistics: live
   * bytes, node counts, height. Throws CORRUPT on the first problem.
   */
  check(root: number | null, opts: CheckOptions = {}): TrieStats {
    return check(this.core, root, opts);
  }

  /** Address -> size of every node and prefix piece reachable from `root` (live space). */
  nodes(root: number | null): Map<number, number> {
    return collectNodes(this.core, root);
  }

  /** Drops every cached node (cursors open on them reload what they need). */
  clearCache(): void {
    this.core.cache.clear();
  }
}
