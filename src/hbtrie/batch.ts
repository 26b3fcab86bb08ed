/**
 * Applying a sorted batch of puts and removes to an HB+-trie, copy-on-write.
 *
 * The batch walks the trie once, top-down, handing each node the contiguous run of operations
 * that falls under it (the operations are sorted, and the encoding keeps byte order, so every
 * subtree receives a contiguous run). A node that receives no operations is not read at all; a
 * node that changes is rebuilt once, as a new node; nothing is modified in place. At the end the
 * new nodes are laid out into blocks, given addresses, serialized and handed to the store in one
 * call (see writeBatch).
 *
 * Trie invariants kept by every batch (checked by `check` in inspect.ts):
 *  - A trie node (a B+-tree whose root carries the trie header) covers the chunk positions
 *    [start, level): `prefix` holds chunks [start, level) that all its keys share, and its
 *    B+-tree is keyed by chunk `level`, on which its keys do not all agree.
 *  - A sub-trie has at least two keys; the top-level trie may hold one.
 *  - A sub-trie hanging off entry (chunk c, level L) starts at L + 1.
 * Hence a sub-trie exists only where at least two keys share a chunk, and a run of chunks shared
 * by all keys below a point is stored once, as a skipped prefix.
 *
 * Whole keys are not stored. When an operation lands on a leaf entry that holds a value, the
 * batch reads that value's key through the KeyReader to tell an update (same key) from a new key
 * that merely shares the chunk, in which case a sub-trie holding both is created.
 */

import type { Core } from './core.js';
import { corrupt, HBTrieError } from './errors.js';
import {
  checkKey,
  cmpKeyChunk,
  cmpKeysChunk,
  compareKeys,
  encodeChunks,
  firstDiffChunk,
  keysEqual,
  writeChunk,
} from './keys.js';
import { BNode, copyBytes, isTrieAt, nodeSize, PTR_SIZE, ptrAt, readPtr, type Scratch, setPtr } from './node.js';
import { cmpEntry, findChildFrom, keyWords, lowerBound, wordsPerChunk } from './btree.js';
import { writeBatch } from './writer.js';

/** One operation of a batch. `remove: true` removes the key; otherwise `value` is stored. */
export type BatchOp =
  | { readonly key: Uint8Array; readonly value: number; readonly remove?: false }
  | { readonly key: Uint8Array; readonly remove: true; readonly value?: undefined };

export interface StaleNode {
  /** Address of a node reachable from the old root and not from the new one. */
  readonly addr: number;
  /** Its size in bytes. */
  readonly size: number;
}

export interface BatchResult {
  /** The new root address (null = empty trie). Equal to the old root if nothing changed. */
  readonly root: number | null;
  /** Nodes (and prefix pieces) the batch made unreachable from the new root, with their sizes. */
  readonly stale: StaleNode[];
  readonly staleBytes: number;
  /** Nodes and prefix pieces written, their bytes, and the blocks they were packed into. */
  readonly writtenNodes: number;
  readonly writtenBytes: number;
  readonly writtenBlocks: number;
  /** Addresses of the blocks written (ascending as allocated). */
  readonly blocks: number[];
  /** Keys added, keys whose value changed, keys removed (removing a missing key counts nothing). */
  readonly inserted: number;
  readonly updated: number;
  readonly removed: number;
  /**
   * The old values of the keys this batch updated (value replaced by a different one) or
   * removed, one per such key, in key order: the records that are no longer referenced (the
   * engine counts them as stale space). Values of inserted keys, of removes of missing keys and
   * of puts that store the value already there are not listed.
   */
  readonly replaced: number[];
  /** KeyReader calls the batch made. */
  readonly keyReads: number;
}

/** Result of applying operations to a (sub-)trie: a root node, a single value, or empty (null). */
type TrieRes = BNode | number | null;

const TWO53 = 2 ** 53;

export function checkOps(ops: readonly BatchOp[], maxKeyLength: number): void {
  if (!Array.isArray(ops)) throw new HBTrieError('INVALID_ARGUMENT', 'batch must be an array of operations');
  let prev: Uint8Array | null = null;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    checkKey(op.key, maxKeyLength);
    if (op.remove !== true) {
      const v = op.value;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= TWO53) {
        throw new HBTrieError('INVALID_ARGUMENT', `value ${String(v)} at batch index ${i} is not a non-negative safe integer`);
      }
    }
    if (prev !== null && compareKeys(prev, op.key) >= 0) {
      throw new HBTrieError('BATCH_UNSORTED', `batch keys must be strictly ascending (index ${i} is not greater than index ${i - 1})`);
    }
    prev = op.key;
  }
}

export class Batch {
  private readonly core: Core;
  private readonly C: number;
  private readonly cap: number;
  private readonly ops: readonly BatchOp[];
  /** Words per chunk. */
  private readonly W: number;
  /** Memory for the entry lists and nodes this batch builds (see Scratch). */
  private readonly scratch: Scratch;
  /** New nodes; node i has temporary address -(i + 1). */
  readonly newNodes: BNode[] = [];
  readonly stale: StaleNode[] = [];
  readonly replaced: number[] = [];
  inserted = 0;
  updated = 0;
  removed = 0;
  keyReads = 0;
  /** Chunk words for applyInternal, and per pair of applyLeaf's (see words). */
  private readonly kwInternal: Int32Array;
  private readonly wordBufs: Int32Array[] = [];

  constructor(core: Core, ops: readonly BatchOp[], scratch: Scratch) {
    this.core = core;
    this.C = core.C;
    this.cap = core.capacity;
    this.ops = ops;
    this.W = wordsPerChunk(core.C);
    this.scratch = scratch;
    this.kwInternal = new Int32Array(this.W);
  }

  /**
   * Chunk-word buffer k, reused across the batch (leaves at level L use 2L and 2L + 1: leaves
   * nest only at deeper levels, so a leaf's pair is never in use by a caller).
   */
  private words(k: number): Int32Array {
    const b = this.wordBufs;
    while (b.length <= k) b.push(new Int32Array(this.W));
    return b[k]!;
  }

  /** Applies the batch to `root` and writes the new nodes. */
  run(root: number | null): BatchResult {
    const ops = this.ops;
    let res: TrieRes;
    let old: BNode | null = null;
    // The recursion below keeps nodes (and views of their memory) across loads: the cache must
    // not reuse memory meanwhile (see cache.ts). The writer, which reads only the batch's own
    // nodes, may.
    this.core.cache.pin();
    try {
      if (ops.length === 0) {
        res = root === null ? null : this.core.load(root);
        old = res;
      } else if (root === null) {
        res = this.buildTop(0, ops.length);
      } else {
        old = this.core.load(root);
        res = this.applyTrie(old, 0, 0, ops.length, true);
      }
    } finally {
      this.core.cache.unpin();
    }
    if (typeof res === 'number') throw new Error('hbtrie: internal error: top-level trie collapsed to a value');
    const counts = { inserted: this.inserted, updated: this.updated, removed: this.removed, replaced: this.replaced, keyReads: this.keyReads };
    if (res === old) {
      return { root, stale: [], staleBytes: 0, writtenNodes: 0, writtenBytes: 0, writtenBlocks: 0, blocks: [], ...counts };
    }
    let staleBytes = 0;
    for (const s of this.stale) staleBytes += s.size;
    if (res === null) {
      return { root: null, stale: this.stale, staleBytes, writtenNodes: 0, writtenBytes: 0, writtenBlocks: 0, blocks: [], ...counts };
    }
    const w = writeBatch(this.core, this.newNodes, res);
    return {
      root: res.addr,
      stale: this.stale,
      staleBytes,
      writtenNodes: w.nodes,
      writtenBytes: w.bytes,
      writtenBlocks: w.blocks.length,
      blocks: w.blocks,
      ...counts,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Node bookkeeping

  private node(ptr: number): BNode {
    return ptr < 0 ? this.newNodes[-ptr - 1]! : this.core.load(ptr);
  }

  private newNode(leaf: boolean, n: number, u8: Uint8Array, dv: DataView, ko: number, po: number): BNode {
    const node = new BNode(-(this.newNodes.length + 1), leaf, n, u8, dv, ko, po);
    this.newNodes.push(node);
    return node;
  }

  /**
   * Scratch for an entry list of `cap` entries: chunks at [ko, ko + cap * C), pointers right
   * after. Returns ko; the memory is `this.scratch.mem`.
   */
  private alloc(cap: number): number {
    return this.scratch.alloc(cap * (this.C + PTR_SIZE));
  }

  /** Records that a written node (and its prefix pieces) is no longer reachable. */
  private retire(node: BNode): void {
    if (node.addr < 0) return;
    node.hot = false; // the cache may drop it first (only old roots still reach it)
    this.stale.push({ addr: node.addr, size: node.size });
    const p = node.pieces;
    if (p !== null) for (let i = 0; i < p.length; i += 2) this.stale.push({ addr: p[i]!, size: p[i + 1]! });
  }

  // ---------------------------------------------------------------------------------------------
  // Trie level

  /** First chunk position in [S, level) where `key` differs from T's prefix, or T.level. */
  private diverge(key: Uint8Array, T: BNode, S: number): number {
    const C = this.C;
    const L = T.level;
    const st = L - T.prefixLen;
    const P = T.prefix;
    for (let p = S; p < L; p++) {
      if (cmpKeyChunk(key, p, C, P, (p - st) * C) !== 0) return p;
    }
    return L;
  }

  /**
   * Applies ops[lo, hi) to the trie whose root is T, seen as starting at chunk position S
   * (S >= T's own start: a larger S drops the first chunks of T's prefix, which the caller now
   * stores elsewhere). Returns T itself if nothing changed.
   */
  private applyTrie(T: BNode, S: number, lo: number, hi: number, top: boolean): TrieRes {
    const C = this.C;
    const L = T.level;
    const st = L - T.prefixLen;
    if (S < st) throw new Error('hbtrie: internal error: trie start moved backwards');
    if (lo < hi && S < L) {
      const ops = this.ops;
      const d1 = this.diverge(ops[lo]!.key, T, S);
      const d2 = hi - 1 > lo ? this.diverge(ops[hi - 1]!.key, T, S) : d1;
      if (d1 < L || d2 < L) {
        // Some keys leave T's prefix. Removes of such keys are no-ops; a put that leaves it at
        // position m makes a new trie node at level m above T.
        let m = L;
        let a = -1;
        let b = hi;
        for (let j = lo; j < hi; j++) {
          const op = ops[j]!;
          const d = this.diverge(op.key, T, S);
          if (d === L) {
            if (a < 0) a = j;
            b = j + 1;
          } else if (op.remove !== true && d < m) {
            m = d;
          }
        }
        if (m === L) {
          if (a < 0) return this.reprefix(T, S, top);
          lo = a;
          hi = b;
        } else {
          // Keep the ops that agree with the prefix on [S, m); the others are removes (no-ops).
          let a2 = lo;
          while (this.diverge(ops[a2]!.key, T, S) < m) a2++;
          let b2 = hi;
          while (this.diverge(ops[b2 - 1]!.key, T, S) < m) b2--;
          return this.splitPrefix(T, S, m, a2, b2, top);
        }
      }
    }
    const list = lo < hi ? this.applyBtree(T, L, lo, hi) : null;
    if (list === null) return this.reprefix(T, S, top);
    if (list.length === 0) return null;
    return this.finishRoot(list, L, S, T.prefix.subarray((S - st) * C), top);
  }

  /** T unchanged except that it now starts at S. */
  private reprefix(T: BNode, S: number, top: boolean): TrieRes {
    const st = T.level - T.prefixLen;
    if (S === st) return T;
    return this.finishRoot([T], T.level, S, T.prefix.subarray((S - st) * this.C), top);
  }

  /**
   * The ops in [lo, hi) share T's prefix on [S, m) and at least one put differs from it at chunk
   * m < T.level: builds a trie node at level m whose entries are T (now starting at m + 1) and
   * the ops grouped by their chunk m.
   */
  private splitPrefix(T: BNode, S: number, m: number, lo: number, hi: number, top: boolean): TrieRes {
    const C = this.C;
    const ops = this.ops;
    const st = T.level - T.prefixLen;
    const P = T.prefix;
    const pOff = (m - st) * C;
    const cap = hi - lo + 1;
    const ko = this.alloc(cap);
    const { u8, dv } = this.scratch.mem;
    const po = ko + cap * C;
    let o = 0;
    let tDone = false;
    let temp = false;
    const emitT = (r: TrieRes): void => {
      tDone = true;
      if (r === null) return;
      copyBytes(P, pOff, u8, ko + o * C, C);
      if (setEntry(dv, po + 8 * o++, r)) temp = true;
    };
    let j = lo;
    while (j < hi) {
      const key = ops[j]!.key;
      let g = j + 1;
      while (g < hi && cmpKeysChunk(ops[g]!.key, key, m, C) === 0) g++;
      const c = cmpKeyChunk(key, m, C, P, pOff);
      if (c > 0 && !tDone) emitT(this.applyTrie(T, m + 1, j, j, false));
      if (c === 0) {
        emitT(this.applyTrie(T, m + 1, j, g, false));
      } else {
        const r = this.buildFromOps(j, g, m + 1);
        if (r !== null) {
          writeChunk(key, m, C, u8, ko + o * C);
          if (setEntry(dv, po + 8 * o++, r)) temp = true;
        }
      }
      j = g;
    }
    if (!tDone) emitT(this.applyTrie(T, m + 1, hi, hi, false));
    const list = this.splitNodes(true, u8, dv, ko, po, o, false, temp);
    if (list.length === 0) return null;
    return this.finishRoot(list, m, S, P.subarray((S - st) * C, pOff), top);
  }

  /**
   * Turns a list of same-height B+-tree nodes into the root of a trie node at `level` covering
   * [S, level) with `prefix`. A trie node left with a single entry collapses: a single value
   * becomes that value (except for the top-level trie, which may hold one key), a single
   * sub-trie absorbs this node's prefix and chunk into its own prefix.
   */
  private finishRoot(list: BNode[], level: number, S: number, prefix: Uint8Array, top: boolean): TrieRes {
    let nodes = list;
    while (nodes.length > 1) nodes = this.buildLevel(nodes, false);
    let root = nodes[0]!;
    while (!root.leaf && root.n === 1) {
      const child = this.node(ptrAt(root, 0));
      this.retire(root);
      root = child;
    }
    // A single entry: no header needed if it collapses.
    if (root.leaf && root.n === 1) {
      if (!isTrieAt(root, 0)) {
        if (!top) {
          this.retire(root);
          return ptrAt(root, 0);
        }
      } else {
        // One sub-trie below: it absorbs this node's prefix and chunk.
        const child = this.node(ptrAt(root, 0));
        const C = this.C;
        const np = new Uint8Array(prefix.length + C + child.prefix.length);
        np.set(prefix, 0);
        copyBytes(root.u8, root.ko, np, prefix.length, C);
        np.set(child.prefix, prefix.length + C);
        this.retire(root);
        return this.withHeader(child, child.level, np);
      }
    }
    return this.withHeader(root, level, prefix);
  }

  /**
   * `node` as the root of a trie node (level, prefix): set in place if new, else copied. A new
   * node owns its memory (scratch, and a prefix of its own): the writer may reclaim cached
   * memory before it copies the new nodes out.
   */
  private withHeader(node: BNode, level: number, prefix: Uint8Array): BNode {
    const C = this.C;
    const prefixLen = prefix.length / C;
    if (node.addr >= 0) {
      if (node.isRoot && node.level === level && node.prefixLen === prefixLen && keysEqual(node.prefix, prefix)) return node;
      // Same entries under a new header.
      const n = node.n;
      const ko = this.alloc(n);
      const { u8, dv } = this.scratch.mem;
      copyBytes(node.u8, node.ko, u8, ko, n * C);
      copyBytes(node.u8, node.po, u8, ko + n * C, n * PTR_SIZE);
      const copy = this.newNode(node.leaf, n, u8, dv, ko, ko + n * C);
      this.retire(node);
      node = copy;
    }
    prefix = prefix.slice();
    node.setHeader(level, prefixLen, prefix);
    if (nodeSize(node, C, this.core.inlineMax) <= this.core.blockSize) return node;
    // The trie header does not fit beside the entries: split and put the header on a new root.
    const halves = this.split(node, 2);
    const parent = this.buildLevel(halves, false)[0]!;
    parent.setHeader(level, prefixLen, prefix);
    return parent;
  }

  // ---------------------------------------------------------------------------------------------
  // B+-tree level

  private applyBtree(node: BNode, L: number, lo: number, hi: number): BNode[] | null {
    return node.leaf ? this.applyLeaf(node, L, lo, hi) : this.applyInternal(node, L, lo, hi);
  }

  private applyLeaf(node: BNode, L: number, lo: number, hi: number): BNode[] | null {
    const C = this.C;
    const W = this.W;
    const ops = this.ops;
    const n = node.n;
    const nu8 = node.u8;
    const nko = node.ko;
    const npo = node.po;
    const cap = n + (hi - lo);
    const ko = this.alloc(cap);
    const { u8, dv } = this.scratch.mem;
    const po = ko + cap * C;
    // Chunk words of the current group's key and of the next op (this level's pair: the
    // recursion below only works on deeper levels).
    let kw = this.words(2 * L);
    let kn = this.words(2 * L + 1);
    let o = 0;
    let i = 0;
    let j = lo;
    let firstChange = -1;
    let temp = false;
    keyWords(ops[j]!.key, L, C, kw);
    while (j < hi) {
      const key = ops[j]!.key;
      // The group: ops[j, g) share this chunk.
      let g = j + 1;
      let more = false;
      while (g < hi) {
        keyWords(ops[g]!.key, L, C, kn);
        if (!eqW(kw, kn, W)) {
          more = true;
          break;
        }
        g++;
      }
      const e = lowerBound(node, kw, C, i);
      if (e > i) {
        copyBytes(nu8, nko + i * C, u8, ko + o * C, (e - i) * C);
        copyBytes(nu8, npo + 8 * i, u8, po + 8 * o, (e - i) * 8);
        o += e - i;
        i = e;
      }
      if (i < n && cmpEntry(kw, node, i, C) === 0) {
        const old = ptrAt(node, i);
        let r: TrieRes;
        let same: boolean;
        if (isTrieAt(node, i)) {
          const child = this.core.load(old);
          r = this.applyTrie(child, L + 1, j, g, false);
          same = r === child;
        } else {
          r = this.mergeValue(old, nu8, nko + i * C, L, j, g);
          same = r === old;
        }
        if (same) {
          copyBytes(nu8, nko + i * C, u8, ko + o * C, C);
          copyBytes(nu8, npo + 8 * i, u8, po + 8 * o, 8);
          o++;
        } else {
          if (firstChange < 0) firstChange = i;
          if (r !== null) {
            copyBytes(nu8, nko + i * C, u8, ko + o * C, C);
            if (setEntry(dv, po + 8 * o++, r)) temp = true;
          }
        }
        i++;
      } else {
        const r = this.buildFromOps(j, g, L + 1);
        if (r !== null) {
          if (firstChange < 0) firstChange = i;
          writeChunk(key, L, C, u8, ko + o * C);
          if (setEntry(dv, po + 8 * o++, r)) temp = true;
        }
      }
      j = g;
      if (more) {
        const t = kw;
        kw = kn;
        kn = t;
      }
    }
    if (firstChange < 0) return null;
    if (i < n) {
      copyBytes(nu8, nko + i * C, u8, ko + o * C, (n - i) * C);
      copyBytes(nu8, npo + 8 * i, u8, po + 8 * o, (n - i) * 8);
      o += n - i;
    }
    this.retire(node);
    return this.splitNodes(true, u8, dv, ko, po, o, firstChange >= n, temp);
  }

  private applyInternal(node: BNode, L: number, lo: number, hi: number): BNode[] | null {
    const C = this.C;
    const ops = this.ops;
    const n = node.n;
    const nu8 = node.u8;
    const nko = node.ko;
    // (Shared by every internal node: it is only read before the recursion.)
    const kw = this.kwInternal;
    // Children that changed, and what replaces each (0, 1 or more nodes).
    const changedAt: number[] = [];
    const replaced: BNode[][] = [];
    let added = 0;
    let i = 0;
    let j = lo;
    while (j < hi) {
      keyWords(ops[j]!.key, L, C, kw);
      const ci = findChildFrom(node, kw, C, i);
      // ops[j, g): the ops below child ci (chunk < chunk ci + 1); galloping search.
      let g = hi;
      if (ci + 1 < n) {
        const off = nko + (ci + 1) * C;
        let a = j + 1;
        let step = 1;
        let b = a;
        while (b < hi && cmpKeyChunk(ops[b]!.key, L, C, nu8, off) < 0) {
          a = b + 1;
          b = a + step;
          step *= 2;
        }
        if (b > hi) b = hi;
        while (a < b) {
          const mid = (a + b) >> 1;
          if (cmpKeyChunk(ops[mid]!.key, L, C, nu8, off) < 0) a = mid + 1;
          else b = mid;
        }
        g = a;
      }
      // (core.load, not core.child: remembering children on a node being replaced is garbage.)
      const r = this.applyBtree(this.core.load(ptrAt(node, ci)), L, j, g);
      if (r !== null) {
        changedAt.push(ci);
        replaced.push(r);
        added += r.length - 1;
      }
      i = ci + 1;
      j = g;
    }
    if (changedAt.length === 0) return null;
    this.retire(node);
    // The new child list: unchanged runs copied in bulk, replacements in between.
    let m = n + added;
    const ko = this.alloc(m);
    const { u8, dv } = this.scratch.mem;
    const po = ko + m * C;
    const npo = node.po;
    let o = 0;
    let prev = 0;
    for (let c = 0; c < changedAt.length; c++) {
      const ci = changedAt[c]!;
      if (ci > prev) {
        copyBytes(nu8, nko + prev * C, u8, ko + o * C, (ci - prev) * C);
        copyBytes(nu8, npo + 8 * prev, u8, po + 8 * o, (ci - prev) * 8);
        o += ci - prev;
      }
      for (const x of replaced[c]!) {
        copyBytes(x.u8, x.ko, u8, ko + o * C, C);
        setPtr(dv, po + 8 * o++, x.addr, false);
      }
      prev = ci + 1;
    }
    if (prev < n) {
      copyBytes(nu8, nko + prev * C, u8, ko + o * C, (n - prev) * C);
      copyBytes(nu8, npo + 8 * prev, u8, po + 8 * o, (n - prev) * 8);
    }
    m = this.mergeSmall(u8, dv, ko, po, m);
    return this.splitNodes(false, u8, dv, ko, po, m, changedAt[0]! >= n - 1, true);
  }

  /**
   * Merges each new child holding at most a quarter of a node's capacity into a neighbour when
   * the two fit in one node (never redistributes, so left-packed appends stay packed). Works in
   * place on the child list of m entries at (ko, po); returns the new count.
   */
  private mergeSmall(u8: Uint8Array, dv: DataView, ko: number, po: number, m: number): number {
    const C = this.C;
    const cap = this.cap;
    const quarter = cap >> 2;
    let k = 0;
    while (k < m) {
      const p = readPtr(dv, po + 8 * k);
      if (p >= 0) {
        k++;
        continue;
      }
      const x = this.node(p);
      if (x.n > quarter) {
        k++;
        continue;
      }
      if (k > 0) {
        const left = this.node(readPtr(dv, po + 8 * (k - 1)));
        if (left.n + x.n <= cap) {
          // Entry k - 1 keeps its chunk (the left node's smallest); entry k goes.
          setPtr(dv, po + 8 * (k - 1), this.concat(left, x).addr, false);
          u8.copyWithin(ko + k * C, ko + (k + 1) * C, ko + m * C);
          u8.copyWithin(po + 8 * k, po + 8 * (k + 1), po + 8 * m);
          m--;
          k--;
          continue;
        }
      }
      if (k + 1 < m) {
        const right = this.node(readPtr(dv, po + 8 * (k + 1)));
        if (right.n + x.n <= cap) {
          setPtr(dv, po + 8 * k, this.concat(x, right).addr, false);
          u8.copyWithin(ko + (k + 1) * C, ko + (k + 2) * C, ko + m * C);
          u8.copyWithin(po + 8 * (k + 1), po + 8 * (k + 2), po + 8 * m);
          m--;
          continue;
        }
      }
      k++;
    }
    return m;
  }

  /** A new node holding a's entries then b's (both the same kind; neither has a trie header). */
  private concat(a: BNode, b: BNode): BNode {
    const C = this.C;
    const n = a.n + b.n;
    const ko = this.alloc(n);
    const { u8, dv } = this.scratch.mem;
    const po = ko + n * C;
    copyBytes(a.u8, a.ko, u8, ko, a.n * C);
    copyBytes(b.u8, b.ko, u8, ko + a.n * C, b.n * C);
    copyBytes(a.u8, a.po, u8, po, a.n * 8);
    copyBytes(b.u8, b.po, u8, po + a.n * 8, b.n * 8);
    this.retire(a);
    this.retire(b);
    const node = this.newNode(a.leaf, n, u8, dv, ko, po);
    node.temp = a.temp || b.temp;
    return node;
  }

  /**
   * Cuts the `count` entries at (ko, po) into nodes of at most `cap` entries: evenly, or
   * (append) full nodes followed by the remainder, which keeps sequential inserts packed. The
   * nodes are views of the list (the writer copies each into its block).
   */
  private splitNodes(leaf: boolean, u8: Uint8Array, dv: DataView, ko: number, po: number, count: number, append: boolean, temp: boolean): BNode[] {
    if (count === 0) return [];
    const C = this.C;
    const cap = this.cap;
    const k = Math.ceil(count / cap);
    const out: BNode[] = [];
    let a = 0;
    for (let p = 0; p < k; p++) {
      const b = append ? Math.min(count, a + cap) : Math.round(((p + 1) * count) / k);
      const node = this.newNode(leaf, b - a, u8, dv, ko + a * C, po + 8 * a);
      node.temp = temp;
      out.push(node);
      a = b;
    }
    return out;
  }

  /** Splits a node into `k` even parts (new nodes without trie header, views of its entries). */
  private split(node: BNode, k: number): BNode[] {
    const n = node.n;
    const C = this.C;
    const out: BNode[] = [];
    let a = 0;
    for (let p = 0; p < k; p++) {
      const b = Math.round(((p + 1) * n) / k);
      const part = this.newNode(node.leaf, b - a, node.u8, node.dv, node.ko + a * C, node.po + 8 * a);
      part.temp = node.temp;
      out.push(part);
      a = b;
    }
    return out;
  }

  /** Internal nodes over a list of same-height nodes. */
  private buildLevel(nodes: BNode[], append: boolean): BNode[] {
    const C = this.C;
    const m = nodes.length;
    const ko = this.alloc(m);
    const { u8, dv } = this.scratch.mem;
    const po = ko + m * C;
    for (let k = 0; k < m; k++) {
      const c = nodes[k]!;
      copyBytes(c.u8, c.ko, u8, ko + k * C, C);
      setPtr(dv, po + 8 * k, c.addr, false);
    }
    return this.splitNodes(false, u8, dv, ko, po, m, append, true);
  }

  // ---------------------------------------------------------------------------------------------
  // Leaf entries

  /**
   * ops[j, g) land on a leaf entry (chunk at buf[off], level L) holding value `old`: reads the
   * key stored there and merges. Returns `old` if nothing changed.
   */
  private mergeValue(old: number, buf: Uint8Array, off: number, L: number, j: number, g: number): TrieRes {
    const ops = this.ops;
    const kOld = this.core.readKey(old);
    this.keyReads++;
    if (cmpKeyChunk(kOld, L, this.C, buf, off) !== 0) {
      throw new HBTrieError('CORRUPT', `KeyReader returned, for value ${old}, a key that does not match its index entry`);
    }
    const S = L + 1;
    if (g - j === 1) {
      const op = ops[j]!;
      if (keysEqual(op.key, kOld)) {
        if (op.remove === true) {
          this.removed++;
          this.replaced.push(old);
          return null;
        }
        if (op.value === old) return old;
        this.updated++;
        this.replaced.push(old);
        return op.value;
      }
      if (op.remove === true) return old;
      this.inserted++;
      const kNew = op.key;
      return compareKeys(kNew, kOld) < 0
        ? this.buildTrie([kNew, kOld], [op.value, old], 0, 2, S)
        : this.buildTrie([kOld, kNew], [old, op.value], 0, 2, S);
    }
    const keys: Uint8Array[] = [];
    const vals: number[] = [];
    let placed = false;
    for (let x = j; x < g; x++) {
      const op = ops[x]!;
      if (!placed) {
        const c = compareKeys(op.key, kOld);
        if (c === 0) {
          placed = true;
          if (op.remove === true) {
            this.removed++;
            this.replaced.push(old);
          } else {
            keys.push(op.key);
            vals.push(op.value);
            if (op.value !== old) {
              this.updated++;
              this.replaced.push(old);
            }
          }
          continue;
        }
        if (c > 0) {
          keys.push(kOld);
          vals.push(old);
          placed = true;
        }
      }
      if (op.remove !== true) {
        keys.push(op.key);
        vals.push(op.value);
        this.inserted++;
      }
    }
    if (!placed) {
      keys.push(kOld);
      vals.push(old);
    }
    return this.buildTrie(keys, vals, 0, keys.length, S);
  }

  /** A fresh (sub-)trie from the puts among ops[j, g), whose keys share chunks [0, S). */
  private buildFromOps(j: number, g: number, S: number): TrieRes {
    const ops = this.ops;
    if (g - j === 1) {
      const op = ops[j]!;
      if (op.remove === true) return null;
      this.inserted++;
      return op.value;
    }
    const keys: Uint8Array[] = [];
    const vals: number[] = [];
    for (let x = j; x < g; x++) {
      const op = ops[x]!;
      if (op.remove !== true) {
        keys.push(op.key);
        vals.push(op.value);
      }
    }
    this.inserted += keys.length;
    return this.buildTrie(keys, vals, 0, keys.length, S);
  }

  /** The top-level trie of an empty index from ops[lo, hi). */
  private buildTop(lo: number, hi: number): TrieRes {
    const r = this.buildFromOps(lo, hi, 0);
    if (typeof r !== 'number') return r;
    // A single key: a root leaf at level 0 with one entry.
    let key: Uint8Array | null = null;
    for (let x = lo; x < hi; x++) if (this.ops[x]!.remove !== true) key = this.ops[x]!.key;
    const C = this.C;
    const ko = this.alloc(1);
    const { u8, dv } = this.scratch.mem;
    writeChunk(key!, 0, C, u8, ko);
    setPtr(dv, ko + C, r, false);
    const node = this.newNode(true, 1, u8, dv, ko, ko + C);
    node.setHeader(0, 0, u8.subarray(0, 0));
    return node;
  }

  /**
   * A trie over sorted, distinct keys[lo, hi) that share chunks [0, S): null, the value if one key,
   * else a trie node at the first chunk where the keys do not all agree.
   */
  private buildTrie(keys: Uint8Array[], vals: number[], lo: number, hi: number, S: number): TrieRes {
    const cnt = hi - lo;
    if (cnt === 0) return null;
    if (cnt === 1) return vals[lo]!;
    const C = this.C;
    const first = keys[lo]!;
    const m = firstDiffChunk(first, keys[hi - 1]!, S, C);
    if (m < S) {
      throw corrupt(-1, `keys that should share ${S} chunks differ earlier (a KeyReader answer does not match the index)`);
    }
    const ko = this.alloc(cnt);
    const { u8, dv } = this.scratch.mem;
    const po = ko + cnt * C;
    let o = 0;
    let a = lo;
    let temp = false;
    while (a < hi) {
      let b = a + 1;
      while (b < hi && cmpKeysChunk(keys[a]!, keys[b]!, m, C) === 0) b++;
      const r = this.buildTrie(keys, vals, a, b, m + 1);
      writeChunk(keys[a]!, m, C, u8, ko + o * C);
      if (setEntry(dv, po + 8 * o++, r!)) temp = true;
      a = b;
    }
    const list = this.splitNodes(true, u8, dv, ko, po, o, false, temp);
    return this.finishRoot(list, m, S, encodeChunks(first, S, m, C), false);
  }
}

function eqW(a: Int32Array, b: Int32Array, W: number): boolean {
  for (let w = 0; w < W; w++) if (a[w] !== b[w]) return false;
  return true;
}

/** Writes a leaf entry's pointer; true if it points to a node (maybe a temporary id). */
function setEntry(dv: DataView, o: number, r: BNode | number): boolean {
  if (typeof r === 'number') {
    setPtr(dv, o, r, false);
    return false;
  }
  setPtr(dv, o, r.addr, true);
  return true;
}
