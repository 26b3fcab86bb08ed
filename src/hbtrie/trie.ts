/**
 * The HB+-trie (ForestDB, IEEE Trans. Computers 2016): a trie whose nodes are B+-trees keyed by
 * fixed-size chunks of the (encoded) key, persisted copy-on-write through a NodeStore.
 *
 * The object holds configuration and the decoded-node cache, not a root: every call takes the
 * root address to work on, and every change returns a new one, so any number of old roots
 * (snapshots) stay readable side by side.
 *
 * Whole keys are not stored in the index. A lookup descends by chunks and ends on a *candidate*
 * value, which is the right one if the key is present at all: `find` returns the candidate
 * without reading anything else (the engine confirms it when it reads the record, which it does
 * anyway), `get` confirms it by reading the key through the KeyReader (one key read per call).
 */

import { Batch, type BatchOp, type BatchResult, checkOps } from './batch.js';
import { findChild, findExact, keyWords, nodeWords, wordsIsTrie, wordsPtr } from './btree.js';
import { Core, type HBTrieOptions } from './core.js';
import { HBTrieError } from './errors.js';
import { checkKey, cmpKeyChunk, keysEqual } from './keys.js';
import { check, collectNodes, type CheckOptions, type TrieStats } from './inspect.js';
import { Cursor, type RangeOptions } from './iterator.js';

export class HBTrie {
  /** Configuration, cache and node loading (exposed for tools: inspect.ts, the engine's checker). */
  readonly core: Core;

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
    const C = core.C;
    const kw = core.kw;
    const W = (C + 3) >> 2;
    let node = core.load(root);
    for (;;) {
      // Skipped prefix.
      const L = node.level;
      const st = L - node.prefixLen;
      if (L > st) {
        const P = node.prefix;
        for (let p = st; p < L; p++) if (cmpKeyChunk(key, p, C, P, (p - st) * C) !== 0) return undefined;
      }
      keyWords(key, L, C, kw);
      while (!node.leaf) {
        const ci = findChild(node, kw, C); // builds node.words
        node = core.load(wordsPtr(node.words!, node.n, ci, W));
      }
      const i = findExact(node, kw, C);
      if (i < 0) return undefined;
      const words = nodeWords(node, C);
      const v = wordsPtr(words, node.n, i, W);
      if (!wordsIsTrie(words, node.n, i, W)) return v;
      node = core.load(v);
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
    try {
      return new Batch(this.core, ops).run(root);
    } catch (e) {
      // The batch recurses once per trie level. Nothing is written before the end of a batch,
      // so the index is unchanged.
      if (e instanceof RangeError && /call stack/i.test(e.message)) {
        throw new HBTrieError('TOO_DEEP', 'the trie is too deep for this batch (keys that are long chains of prefixes of one another); nothing was written');
      }
      throw e;
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

  /** Drops every cached decoded node. */
  clearCache(): void {
    this.core.cache.clear();
  }
}
