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
import { allocEntries, BNode, KIND_TRIE, KIND_VALUE, nodeSize, sliceEntries } from './node.js';
import { cmpW, findChild, keyWords, lowerBound, nodeWords, wordsPerChunk } from './btree.js';
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
  /** New nodes; node i has temporary address -(i + 1). */
  readonly newNodes: BNode[] = [];
  readonly stale: StaleNode[] = [];
  inserted = 0;
  updated = 0;
  removed = 0;
  keyReads = 0;

  constructor(core: Core, ops: readonly BatchOp[]) {
    this.core = core;
    this.C = core.C;
    this.cap = core.capacity;
    this.ops = ops;
    this.W = wordsPerChunk(core.C);
  }

  /** Applies the batch to `root` and writes the new nodes. */
  run(root: number | null): BatchResult {
    const ops = this.ops;
    let res: TrieRes;
    let old: BNode | null = null;
    if (ops.length === 0) {
      res = root === null ? null : this.core.load(root);
      old = res;
    } else if (root === null) {
      res = this.buildTop(0, ops.length);
    } else {
      old = this.core.load(root);
      res = this.applyTrie(old, 0, 0, ops.length, true);
    }
    if (typeof res === 'number') throw new Error('hbtrie: internal error: top-level trie collapsed to a value');
    const counts = { inserted: this.inserted, updated: this.updated, removed: this.removed, keyReads: this.keyReads };
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

  private newNode(leaf: boolean, n: number, keys: Uint8Array, ptrs: Float64Array, kinds: Uint8Array | null): BNode {
    const node = new BNode(-(this.newNodes.length + 1), leaf, n, keys, ptrs, kinds);
    this.newNodes.push(node);
    return node;
  }

  /** Records that a written node (and its prefix pieces) is no longer reachable. */
  private retire(node: BNode): void {
    if (node.addr < 0) return;
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
    const { keys, ptrs, kinds: kd } = allocEntries(hi - lo + 1, C, true);
    const kinds = kd!;
    let o = 0;
    let tDone = false;
    const emitT = (r: TrieRes): void => {
      tDone = true;
      if (r === null) return;
      keys.set(P.subarray(pOff, pOff + C), o * C);
      setEntry(ptrs, kinds, o++, r);
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
          writeChunk(key, m, C, keys, o * C);
          setEntry(ptrs, kinds, o++, r);
        }
      }
      j = g;
    }
    if (!tDone) emitT(this.applyTrie(T, m + 1, hi, hi, false));
    const list = this.splitLeaf(keys, ptrs, kinds, o, false);
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
      const child = this.node(root.ptrs[0]!);
      this.retire(root);
      root = child;
    }
    // A single entry: no header needed if it collapses.
    if (root.leaf && root.n === 1) {
      if (root.kinds![0] === KIND_VALUE) {
        if (!top) {
          this.retire(root);
          return root.ptrs[0]!;
        }
      } else {
        // One sub-trie below: it absorbs this node's prefix and chunk.
        const child = this.node(root.ptrs[0]!);
        const C = this.C;
        const np = new Uint8Array(prefix.length + C + child.prefix.length);
        np.set(prefix, 0);
        np.set(root.keys.subarray(0, C), prefix.length);
        np.set(child.prefix, prefix.length + C);
        this.retire(root);
        return this.withHeader(child, child.level, np);
      }
    }
    return this.withHeader(root, level, prefix);
  }

  /** `node` as the root of a trie node (level, prefix): set in place if new, else copied. */
  private withHeader(node: BNode, level: number, prefix: Uint8Array): BNode {
    const C = this.C;
    const prefixLen = prefix.length / C;
    if (node.addr >= 0) {
      if (node.isRoot && node.level === level && node.prefixLen === prefixLen && keysEqual(node.prefix, prefix)) return node;
      const copy = this.newNode(node.leaf, node.n, node.keys, node.ptrs, node.kinds);
      this.retire(node);
      node = copy;
    }
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
    const nk = node.keys;
    const np = node.ptrs;
    const nkd = node.kinds!;
    const words = nodeWords(node, C);
    const { keys, ptrs, kinds: kd } = allocEntries(n + (hi - lo), C, true);
    const kinds = kd!;
    // Chunk words of the current group's key and of the next op (local: recursion below reuses
    // nothing of ours).
    let kw = new Int32Array(W);
    let kn = new Int32Array(W);
    let o = 0;
    let i = 0;
    let j = lo;
    let firstChange = -1;
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
        copyEntries(nk, np, nkd, i, e, keys, ptrs, kinds, o, C);
        o += e - i;
        i = e;
      }
      if (i < n && cmpW(kw, words, n, i, W) === 0) {
        const old = np[i]!;
        let r: TrieRes;
        let same: boolean;
        if (nkd[i] === KIND_TRIE) {
          const child = this.node(old);
          r = this.applyTrie(child, L + 1, j, g, false);
          same = r === child;
        } else {
          r = this.mergeValue(old, nk, i * C, L, j, g);
          same = r === old;
        }
        if (same) {
          copyEntries(nk, np, nkd, i, i + 1, keys, ptrs, kinds, o, C);
          o++;
        } else {
          if (firstChange < 0) firstChange = i;
          if (r !== null) {
            copyChunk(nk, i * C, keys, o * C, C);
            setEntry(ptrs, kinds, o++, r);
          }
        }
        i++;
      } else {
        const r = this.buildFromOps(j, g, L + 1);
        if (r !== null) {
          if (firstChange < 0) firstChange = i;
          writeChunk(key, L, C, keys, o * C);
          setEntry(ptrs, kinds, o++, r);
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
      copyEntries(nk, np, nkd, i, n, keys, ptrs, kinds, o, C);
      o += n - i;
    }
    this.retire(node);
    return this.splitLeaf(keys, ptrs, kinds, o, firstChange >= n);
  }

  private applyInternal(node: BNode, L: number, lo: number, hi: number): BNode[] | null {
    const C = this.C;
    const ops = this.ops;
    const n = node.n;
    const nk = node.keys;
    const np = node.ptrs;
    const kw = new Int32Array(this.W);
    // Children that changed, and what replaces each (0, 1 or more nodes).
    const changedAt: number[] = [];
    const replaced: BNode[][] = [];
    let added = 0;
    let i = 0;
    let j = lo;
    while (j < hi) {
      keyWords(ops[j]!.key, L, C, kw);
      const ci = findChild(node, kw, C, i);
      // ops[j, g): the ops below child ci (chunk < keys[ci + 1]); galloping search.
      let g = hi;
      if (ci + 1 < n) {
        const off = (ci + 1) * C;
        let a = j + 1;
        let step = 1;
        let b = a;
        while (b < hi && cmpKeyChunk(ops[b]!.key, L, C, nk, off) < 0) {
          a = b + 1;
          b = a + step;
          step *= 2;
        }
        if (b > hi) b = hi;
        while (a < b) {
          const mid = (a + b) >> 1;
          if (cmpKeyChunk(ops[mid]!.key, L, C, nk, off) < 0) a = mid + 1;
          else b = mid;
        }
        g = a;
      }
      const r = this.applyBtree(this.node(np[ci]!), L, j, g);
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
    const { keys, ptrs } = allocEntries(m, C, false);
    let o = 0;
    let prev = 0;
    for (let c = 0; c < changedAt.length; c++) {
      const ci = changedAt[c]!;
      if (ci > prev) {
        keys.set(nk.subarray(prev * C, ci * C), o * C);
        ptrs.set(np.subarray(prev, ci), o);
        o += ci - prev;
      }
      for (const x of replaced[c]!) {
        copyChunk(x.keys, 0, keys, o * C, C);
        ptrs[o++] = x.addr;
      }
      prev = ci + 1;
    }
    if (prev < n) {
      keys.set(nk.subarray(prev * C, n * C), o * C);
      ptrs.set(np.subarray(prev, n), o);
    }
    m = this.mergeSmall(keys, ptrs, m);
    return this.splitNodes(false, keys, ptrs, null, m, changedAt[0]! >= n - 1);
  }

  /**
   * Merges each new child holding at most a quarter of a node's capacity into a neighbour when
   * the two fit in one node (never redistributes, so left-packed appends stay packed). Works in
   * place on the child list (keys, ptrs) of m entries; returns the new count.
   */
  private mergeSmall(keys: Uint8Array, ptrs: Float64Array, m: number): number {
    const C = this.C;
    const quarter = this.cap >> 2;
    let k = 0;
    while (k < m) {
      const p = ptrs[k]!;
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
        const left = this.node(ptrs[k - 1]!);
        if (left.n + x.n <= this.cap) {
          // Entry k - 1 keeps its chunk (the left node's smallest); entry k goes.
          ptrs[k - 1] = this.concat(left, x).addr;
          keys.copyWithin(k * C, (k + 1) * C, m * C);
          ptrs.copyWithin(k, k + 1, m);
          m--;
          k--;
          continue;
        }
      }
      if (k + 1 < m) {
        const right = this.node(ptrs[k + 1]!);
        if (right.n + x.n <= this.cap) {
          ptrs[k] = this.concat(x, right).addr;
          keys.copyWithin((k + 1) * C, (k + 2) * C, m * C);
          ptrs.copyWithin(k + 1, k + 2, m);
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
    const { keys, ptrs, kinds } = allocEntries(n, C, a.leaf);
    keys.set(a.keys.subarray(0, a.n * C), 0);
    keys.set(b.keys.subarray(0, b.n * C), a.n * C);
    ptrs.set(a.ptrs.subarray(0, a.n), 0);
    ptrs.set(b.ptrs.subarray(0, b.n), a.n);
    if (kinds !== null) {
      kinds.set(a.kinds!.subarray(0, a.n), 0);
      kinds.set(b.kinds!.subarray(0, b.n), a.n);
    }
    this.retire(a);
    this.retire(b);
    return this.newNode(a.leaf, n, keys, ptrs, kinds);
  }

  private splitLeaf(keys: Uint8Array, ptrs: Float64Array, kinds: Uint8Array, count: number, append: boolean): BNode[] {
    return this.splitNodes(true, keys, ptrs, kinds, count, append);
  }

  /**
   * Cuts `count` entries into nodes of at most `cap` entries: evenly, or (append) full nodes
   * followed by the remainder, which keeps sequential inserts packed.
   */
  private splitNodes(leaf: boolean, keys: Uint8Array, ptrs: Float64Array, kinds: Uint8Array | null, count: number, append: boolean): BNode[] {
    if (count === 0) return [];
    const C = this.C;
    const cap = this.cap;
    if (count <= cap) {
      if (ptrs.length - count > (count >> 2) + 4) {
        const e = sliceEntries(keys, ptrs, kinds, 0, count, C);
        return [this.newNode(leaf, count, e.keys, e.ptrs, e.kinds)];
      }
      return [this.newNode(leaf, count, keys, ptrs, kinds)];
    }
    const k = Math.ceil(count / cap);
    const out: BNode[] = [];
    let a = 0;
    for (let p = 0; p < k; p++) {
      const b = append ? Math.min(count, a + cap) : Math.round(((p + 1) * count) / k);
      const e = sliceEntries(keys, ptrs, kinds, a, b, C);
      out.push(this.newNode(leaf, b - a, e.keys, e.ptrs, e.kinds));
      a = b;
    }
    return out;
  }

  /** Splits a node into `k` even parts (new nodes without trie header). */
  private split(node: BNode, k: number): BNode[] {
    const n = node.n;
    const C = this.C;
    const out: BNode[] = [];
    let a = 0;
    for (let p = 0; p < k; p++) {
      const b = Math.round(((p + 1) * n) / k);
      const e = sliceEntries(node.keys, node.ptrs, node.kinds, a, b, C);
      out.push(this.newNode(node.leaf, b - a, e.keys, e.ptrs, e.kinds));
      a = b;
    }
    return out;
  }

  /** Internal nodes over a list of same-height nodes. */
  private buildLevel(nodes: BNode[], append: boolean): BNode[] {
    const C = this.C;
    const m = nodes.length;
    const { keys, ptrs } = allocEntries(m, C, false);
    for (let k = 0; k < m; k++) {
      const c = nodes[k]!;
      keys.set(c.keys.subarray(0, C), k * C);
      ptrs[k] = c.addr;
    }
    return this.splitNodes(false, keys, ptrs, null, m, append);
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
          return null;
        }
        if (op.value === old) return old;
        this.updated++;
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
          } else {
            keys.push(op.key);
            vals.push(op.value);
            if (op.value !== old) this.updated++;
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
    const keys = new Uint8Array(C);
    writeChunk(key!, 0, C, keys, 0);
    const node = this.newNode(true, 1, keys, Float64Array.of(r), Uint8Array.of(KIND_VALUE));
    node.setHeader(0, 0, keys.subarray(0, 0));
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
    const { keys: ks, ptrs: ps, kinds: kd0 } = allocEntries(cnt, C, true);
    const kd = kd0!;
    let o = 0;
    let a = lo;
    while (a < hi) {
      let b = a + 1;
      while (b < hi && cmpKeysChunk(keys[a]!, keys[b]!, m, C) === 0) b++;
      const r = this.buildTrie(keys, vals, a, b, m + 1);
      writeChunk(keys[a]!, m, C, ks, o * C);
      setEntry(ps, kd, o++, r!);
      a = b;
    }
    const list = this.splitNodes(true, ks, ps, kd, o, false);
    return this.finishRoot(list, m, S, encodeChunks(first, S, m, C), false);
  }
}

function eqW(a: Int32Array, b: Int32Array, W: number): boolean {
  for (let w = 0; w < W; w++) if (a[w] !== b[w]) return false;
  return true;
}

function copyChunk(src: Uint8Array, so: number, dst: Uint8Array, dO: number, C: number): void {
  for (let k = 0; k < C; k++) dst[dO + k] = src[so + k]!;
}

/** Copies leaf entries [a, b) of (keys, ptrs, kinds) to position o of the destination arrays. */
function copyEntries(
  sk: Uint8Array,
  sp: Float64Array,
  sd: Uint8Array,
  a: number,
  b: number,
  dk: Uint8Array,
  dp: Float64Array,
  dd: Uint8Array,
  o: number,
  C: number,
): void {
  const cnt = b - a;
  if (cnt <= 4) {
    for (let x = 0; x < cnt; x++) {
      copyChunk(sk, (a + x) * C, dk, (o + x) * C, C);
      dp[o + x] = sp[a + x]!;
      dd[o + x] = sd[a + x]!;
    }
    return;
  }
  dk.set(sk.subarray(a * C, b * C), o * C);
  dp.set(sp.subarray(a, b), o);
  dd.set(sd.subarray(a, b), o);
}

function setEntry(ptrs: Float64Array, kinds: Uint8Array, i: number, r: BNode | number): void {
  if (typeof r === 'number') {
    ptrs[i] = r;
    kinds[i] = KIND_VALUE;
  } else {
    ptrs[i] = r.addr;
    kinds[i] = KIND_TRIE;
  }
}
