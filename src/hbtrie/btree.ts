/**
 * Searches inside one decoded B+-tree node. A node's `keys` are n chunks of C bytes in ascending
 * order. In a leaf they are the chunks of the entries; in an internal node keys[i] is the exact
 * smallest chunk stored under child i.
 *
 * Searches compare chunks as 32-bit words: the node's chunks are converted once (node.words) and
 * the searched key's chunk once per node level (keyWords), so a binary-search probe costs
 * ceil(C / 4) integer comparisons instead of a byte loop.
 */

import type { BNode } from './node.js';

/** Words per chunk. */
export function wordsPerChunk(C: number): number {
  return (C + 3) >> 2;
}

/** Chunk `level` of `key` as words (see BNode.words) into out[0, W). */
export function keyWords(key: Uint8Array, level: number, C: number, out: Int32Array): void {
  const D = C - 1;
  const len = key.length;
  const p0 = level * D;
  const rem = len - p0;
  const mk = rem <= 0 ? 0 : rem < C ? rem : C;
  const W = (C + 3) >> 2;
  let acc = 0;
  let w = 0;
  if (p0 + D <= len) {
    for (let j = 0; j < W * 4; j++) {
      const b = j < D ? key[p0 + j]! : j === D ? mk : 0;
      acc = (acc << 8) | b;
      if ((j & 3) === 3) {
        out[w++] = acc ^ 0x80000000;
        acc = 0;
      }
    }
  } else {
    for (let j = 0; j < W * 4; j++) {
      const b = j < D ? (p0 + j < len ? key[p0 + j]! : 0) : j === D ? mk : 0;
      acc = (acc << 8) | b;
      if ((j & 3) === 3) {
        out[w++] = acc ^ 0x80000000;
        acc = 0;
      }
    }
  }
}

/** The node's chunks as words, built on first use. */
export function nodeWords(node: BNode, C: number): Int32Array {
  let words = node.words;
  if (words !== null) return words;
  const W = (C + 3) >> 2;
  const n = node.n;
  const keys = node.keys;
  words = new Int32Array(n * W);
  for (let i = 0; i < n; i++) {
    const base = i * C;
    let acc = 0;
    let w = i * W;
    for (let j = 0; j < W * 4; j++) {
      acc = (acc << 8) | (j < C ? keys[base + j]! : 0);
      if ((j & 3) === 3) {
        words[w++] = acc ^ 0x80000000;
        acc = 0;
      }
    }
  }
  node.words = words;
  return words;
}

/** Compares the key words with entry i's words: negative if the key is smaller. */
export function cmpW(kw: Int32Array, words: Int32Array, i: number, W: number): number {
  const base = i * W;
  for (let w = 0; w < W; w++) {
    const d = kw[w]! - words[base + w]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Internal node: index of the child whose range holds the key chunk (last i with chunk_i <= key, else `from`). */
export function findChild(node: BNode, kw: Int32Array, C: number, from = 0): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  let lo = from;
  let hi = node.n - 1;
  if (W === 2) {
    const k0 = kw[0]!;
    const k1 = kw[1]!;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const a = words[mid * 2]!;
      if (k0 > a || (k0 === a && k1 >= words[mid * 2 + 1]!)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (cmpW(kw, words, mid, W) >= 0) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Index of the first entry in [from, n) whose chunk is >= the key chunk (n if none). */
export function lowerBound(node: BNode, kw: Int32Array, C: number, from = 0): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  let lo = from;
  let hi = node.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpW(kw, words, mid, W) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first entry whose chunk is > the key chunk (n if none). */
export function upperBound(node: BNode, kw: Int32Array, C: number): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  let lo = 0;
  let hi = node.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpW(kw, words, mid, W) >= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Leaf: index of the entry whose chunk equals the key chunk, or -1. */
export function findExact(node: BNode, kw: Int32Array, C: number): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  let lo = 0;
  let hi = node.n - 1;
  if (W === 2) {
    const k0 = kw[0]!;
    const k1 = kw[1]!;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const a = words[mid * 2]!;
      const b = words[mid * 2 + 1]!;
      if (k0 === a && k1 === b) return mid;
      if (k0 > a || (k0 === a && k1 > b)) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = cmpW(kw, words, mid, W);
    if (c === 0) return mid;
    if (c > 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
