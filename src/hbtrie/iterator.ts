/**
 * Ordered iteration over a trie root, forward or reverse, with gt/gte/lt/lte bounds and a limit.
 *
 * The cursor is a stack of (node, index) frames running from the top-level trie root through
 * B+-tree levels and sub-trie roots down to a leaf entry that holds a value. It yields values
 * (record addresses) in key order; it does not read keys except to place a bound: a seek descends
 * by the bound's chunks and only when the bound's path ends on a leaf value with the same chunk
 * does it read that key (one KeyReader call per bound at most).
 *
 * The far bound is turned into a stop position (the first entry beyond the range, found with the
 * same seek) at construction, so stepping never compares keys.
 */

import { findChild, keyWords, lowerBound, upperBound } from './btree.js';
import type { Core } from './core.js';
import { HBTrieError } from './errors.js';
import { checkKey, cmpKeyChunk, compareKeys } from './keys.js';
import { type BNode, isTrieAt, ptrAt } from './node.js';

export interface RangeOptions {
  /** Keys greater than this. Takes precedence over gte. */
  gt?: Uint8Array;
  gte?: Uint8Array;
  /** Keys less than this. Takes precedence over lte. */
  lt?: Uint8Array;
  lte?: Uint8Array;
  /** Descending order. */
  reverse?: boolean;
  /** At most this many values; undefined or negative = no limit. */
  limit?: number;
}

export class Cursor implements IterableIterator<number> {
  private readonly core: Core;
  private nodes: BNode[] = [];
  private idx: number[] = [];
  private depth = 0;
  private readonly reverse: boolean;
  private remaining: number;
  private started = false;
  private finished = false;
  private stopAddr = -1;
  private stopIdx = -1;
  private readonly kw = new Int32Array(16);

  constructor(core: Core, root: number | null, opts: RangeOptions = {}) {
    this.core = core;
    this.reverse = opts.reverse === true;
    const limit = opts.limit;
    if (limit !== undefined && (typeof limit !== 'number' || Number.isNaN(limit))) {
      throw new HBTrieError('INVALID_ARGUMENT', 'limit must be a number');
    }
    this.remaining = limit === undefined || limit < 0 ? Infinity : Math.floor(limit);
    const lower = opts.gt ?? opts.gte;
    const lowerStrict = opts.gt !== undefined;
    const upper = opts.lt ?? opts.lte;
    const upperStrict = opts.lt !== undefined;
    if (lower !== undefined) checkKey(lower, core.maxKeyLength);
    if (upper !== undefined) checkKey(upper, core.maxKeyLength);
    if (root === null || this.remaining === 0) {
      this.finished = true;
      return;
    }
    if (lower !== undefined && upper !== undefined) {
      const c = compareKeys(lower, upper);
      if (c > 0 || (c === 0 && (lowerStrict || upperStrict))) {
        this.finished = true;
        return;
      }
    }
    if (!this.reverse) {
      if (upper !== undefined) {
        // Stop at the first entry >= upper (lt) or > upper (lte).
        this.seekForward(root, upper, !upperStrict);
        this.saveStop();
      }
      if (lower !== undefined) this.seekForward(root, lower, lowerStrict);
      else this.first(root);
    } else {
      if (lower !== undefined) {
        // Stop at the last entry <= lower (gt) or < lower (gte).
        this.seekReverse(root, lower, !lowerStrict);
        this.saveStop();
      }
      if (upper !== undefined) this.seekReverse(root, upper, upperStrict);
      else this.last(root);
    }
  }

  [Symbol.iterator](): Cursor {
    return this;
  }

  next(): IteratorResult<number> {
    if (this.finished) return { value: undefined, done: true };
    if (this.started) {
      if (this.reverse) this.retreat();
      else this.advance();
    } else {
      this.started = true;
    }
    const d = this.depth - 1;
    if (d < 0 || this.remaining <= 0) return this.end();
    const node = this.live(d);
    const i = this.idx[d]!;
    if (node.addr === this.stopAddr && i === this.stopIdx) return this.end();
    this.remaining--;
    return { value: ptrAt(node, i), done: false };
  }

  return(): IteratorResult<number> {
    return this.end();
  }

  private end(): IteratorResult<number> {
    this.finished = true;
    this.depth = 0;
    this.nodes = [];
    this.idx = [];
    return { value: undefined, done: true };
  }

  private saveStop(): void {
    const d = this.depth - 1;
    if (d >= 0) {
      this.stopAddr = this.nodes[d]!.addr;
      this.stopIdx = this.idx[d]!;
    }
  }

  /**
   * The node of frame d, reloaded if the cache evicted it since the frame was pushed (loads made
   * by this or another caller may reuse its memory; see cache.ts). Entry counts stay valid.
   */
  private live(d: number): BNode {
    let node = this.nodes[d]!;
    if (node.dead) {
      node = this.core.load(node.addr);
      this.nodes[d] = node;
    }
    return node;
  }

  private push(node: BNode, i: number): void {
    const d = this.depth++;
    this.nodes[d] = node;
    this.idx[d] = i;
  }

  private first(root: number): void {
    this.depth = 0;
    this.push(this.core.load(root), 0);
    this.descendFirst();
  }

  private last(root: number): void {
    this.depth = 0;
    const node = this.core.load(root);
    this.push(node, node.n - 1);
    this.descendLast();
  }

  /** From the top frame's entry, follows pointers down to the first value below it. */
  private descendFirst(): void {
    const core = this.core;
    for (;;) {
      const d = this.depth - 1;
      const node = this.live(d);
      const i = this.idx[d]!;
      if (node.leaf && !isTrieAt(node, i)) return;
      this.push(core.child(node, i), 0);
    }
  }

  private descendLast(): void {
    const core = this.core;
    for (;;) {
      const d = this.depth - 1;
      const node = this.live(d);
      const i = this.idx[d]!;
      if (node.leaf && !isTrieAt(node, i)) return;
      const child = core.child(node, i);
      this.push(child, child.n - 1);
    }
  }

  /** Moves to the next value after the top frame's entry (depth 0 at the end). */
  private advance(): void {
    for (let d = this.depth - 1; d >= 0; d--) {
      const i = ++this.idx[d]!;
      if (i < this.nodes[d]!.n) {
        this.depth = d + 1;
        this.descendFirst();
        return;
      }
    }
    this.depth = 0;
  }

  private retreat(): void {
    for (let d = this.depth - 1; d >= 0; d--) {
      const i = --this.idx[d]!;
      if (i >= 0) {
        this.depth = d + 1;
        this.descendLast();
        return;
      }
    }
    this.depth = 0;
  }

  /** Compares the bound's chunks [start, level) with a trie node's skipped prefix. */
  private cmpPrefix(b: Uint8Array, node: BNode): number {
    const C = this.core.C;
    const L = node.level;
    const st = L - node.prefixLen;
    const P = node.prefix;
    for (let p = st; p < L; p++) {
      const c = cmpKeyChunk(b, p, C, P, (p - st) * C);
      if (c !== 0) return c;
    }
    return 0;
  }

  /** Positions on the first value with key >= b (strict: > b); depth 0 if none. */
  private seekForward(root: number, b: Uint8Array, strict: boolean): void {
    const core = this.core;
    const C = core.C;
    this.depth = 0;
    let node = core.load(root);
    for (;;) {
      const c = this.cmpPrefix(b, node);
      if (c < 0) {
        this.push(node, 0);
        this.descendFirst();
        return;
      }
      if (c > 0) {
        this.advance();
        return;
      }
      const L = node.level;
      const kw = this.kw;
      keyWords(b, L, C, kw);
      while (!node.leaf) {
        const i = findChild(node, kw, C);
        this.push(node, i);
        node = core.child(node, i);
      }
      const i = lowerBound(node, kw, C);
      this.push(node, i);
      if (i >= node.n) {
        this.advance();
        return;
      }
      if (cmpKeyChunk(b, L, C, node.u8, node.ko + i * C) < 0) {
        this.descendFirst();
        return;
      }
      if (isTrieAt(node, i)) {
        node = core.child(node, i);
        continue;
      }
      const r = compareKeys(core.readKey(ptrAt(node, i)), b);
      if (r > 0 || (r === 0 && !strict)) return;
      this.advance();
      return;
    }
  }

  /** Positions on the last value with key <= b (strict: < b); depth 0 if none. */
  private seekReverse(root: number, b: Uint8Array, strict: boolean): void {
    const core = this.core;
    const C = core.C;
    this.depth = 0;
    let node = core.load(root);
    for (;;) {
      const c = this.cmpPrefix(b, node);
      if (c > 0) {
        this.push(node, node.n - 1);
        this.descendLast();
        return;
      }
      if (c < 0) {
        this.retreat();
        return;
      }
      const L = node.level;
      const kw = this.kw;
      keyWords(b, L, C, kw);
      while (!node.leaf) {
        const i = findChild(node, kw, C);
        this.push(node, i);
        node = core.child(node, i);
      }
      const i = upperBound(node, kw, C) - 1;
      this.push(node, i);
      if (i < 0) {
        this.retreat();
        return;
      }
      if (cmpKeyChunk(b, L, C, node.u8, node.ko + i * C) > 0) {
        this.descendLast();
        return;
      }
      if (isTrieAt(node, i)) {
        node = core.child(node, i);
        continue;
      }
      const r = compareKeys(core.readKey(ptrAt(node, i)), b);
      if (r < 0 || (r === 0 && !strict)) return;
      this.retreat();
      return;
    }
  }
}
