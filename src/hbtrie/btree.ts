/**
 * Searches inside one B+-tree node. A node's chunks are n chunks of C bytes in ascending order,
 * in place in the node's bytes. In a leaf they are the chunks of the entries; in an internal node
 * chunk i is the exact smallest chunk stored under child i.
 *
 * Searches do not loop over chunk bytes: the searched key's chunk is converted once per node
 * level into W = ceil(C / 4) big-endian 32-bit words with the sign bit flipped, zero-padded
 * (keyWords), so that signed comparison is byte order, and a probe reads the node's chunk the
 * same way (a big-endian DataView read, sign flipped). A probe then costs a couple of integer
 * comparisons and no decoding of the node is needed.
 */

import type { BNode } from './node.js';

const SIGN = 0x80000000 | 0;

/** Words per chunk. */
export function wordsPerChunk(C: number): number {
  return (C + 3) >> 2;
}

/** Chunk `level` of `key` as words (see above) into out[0, W). */
export function keyWords(key: Uint8Array, level: number, C: number, out: Int32Array): void {
  const D = C - 1;
  const len = key.length;
  const p0 = level * D;
  const rem = len - p0;
  const mk = rem <= 0 ? 0 : rem < C ? rem : C;
  const W = (C + 3) >> 2;
  if ((C & 3) === 0 && p0 + D <= len) {
    // The common case: whole words, all key bytes, the marker last.
    for (let w = 0, q = p0; w < W; w++, q += 4) {
      const b3 = w === W - 1 ? mk : key[q + 3]!;
      out[w] = ((key[q]! << 24) | (key[q + 1]! << 16) | (key[q + 2]! << 8) | b3) ^ SIGN;
    }
    return;
  }
  let acc = 0;
  let w = 0;
  if (p0 + D <= len) {
    for (let j = 0; j < W * 4; j++) {
      const b = j < D ? key[p0 + j]! : j === D ? mk : 0;
      acc = (acc << 8) | b;
      if ((j & 3) === 3) {
        out[w++] = acc ^ SIGN;
        acc = 0;
      }
    }
  } else {
    for (let j = 0; j < W * 4; j++) {
      const b = j < D ? (p0 + j < len ? key[p0 + j]! : 0) : j === D ? mk : 0;
      acc = (acc << 8) | b;
      if ((j & 3) === 3) {
        out[w++] = acc ^ SIGN;
        acc = 0;
      }
    }
  }
}

/**
 * Compares the key words with the C-byte chunk at byte offset o of (dv, u8) (views of the same
 * memory): negative if the key is smaller.
 */
export function cmpWords(kw: Int32Array, dv: DataView, u8: Uint8Array, o: number, C: number): number {
  const full = C >> 2;
  for (let w = 0; w < full; w++) {
    const d = kw[w]! - (dv.getInt32(o + 4 * w, false) ^ SIGN);
    if (d !== 0) return d;
  }
  const r = C & 3;
  if (r === 0) return 0;
  // A partial last word: the remaining bytes, zero-padded.
  const b = o + 4 * full;
  let acc = u8[b]! << 24;
  if (r > 1) acc |= u8[b + 1]! << 16;
  if (r > 2) acc |= u8[b + 2]! << 8;
  return kw[full]! - (acc ^ SIGN);
}

/** Compares the key words with entry i's chunk: negative if the key is smaller. */
export function cmpEntry(kw: Int32Array, node: BNode, i: number, C: number): number {
  return cmpWords(kw, node.dv, node.u8, node.ko + i * C, C);
}

/** Index of the first of the n chunks at ko, from `from` on, that is >= the key chunk (n if none). */
export function lowerBoundAt(dv: DataView, u8: Uint8Array, ko: number, n: number, kw: Int32Array, C: number, from: number): number {
  let lo = from;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpWords(kw, dv, u8, ko + mid * C, C) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first of the n chunks at ko, from `from` on, that is > the key chunk (n if none). */
export function upperBoundAt(dv: DataView, u8: Uint8Array, ko: number, n: number, kw: Int32Array, C: number, from: number): number {
  let lo = from;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpWords(kw, dv, u8, ko + mid * C, C) >= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the chunk equal to the key chunk among the n chunks at ko, or -1. */
export function findExactAt(dv: DataView, u8: Uint8Array, ko: number, n: number, kw: Int32Array, C: number): number {
  return findExactIn(dv, u8, ko, 0, n, kw, C);
}

/** Index of the chunk equal to the key chunk among chunks [from, to) of the chunks at ko, or -1. */
export function findExactIn(dv: DataView, u8: Uint8Array, ko: number, from: number, to: number, kw: Int32Array, C: number): number {
  let lo = from;
  let hi = to - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = cmpWords(kw, dv, u8, ko + mid * C, C);
    if (c === 0) return mid;
    if (c > 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Index of the first entry in [from, n) whose chunk is >= the key chunk (n if none). */
export function lowerBound(node: BNode, kw: Int32Array, C: number, from = 0): number {
  return lowerBoundAt(node.dv, node.u8, node.ko, node.n, kw, C, from);
}

/** Index of the first entry in [from, n) whose chunk is > the key chunk (n if none). */
export function upperBound(node: BNode, kw: Int32Array, C: number, from = 0): number {
  return upperBoundAt(node.dv, node.u8, node.ko, node.n, kw, C, from);
}

/** Internal node: index of the child whose range holds the key chunk (last i >= from with chunk_i <= key, else `from`). */
export function findChild(node: BNode, kw: Int32Array, C: number, from = 0): number {
  const i = upperBound(node, kw, C, from) - 1;
  return i < from ? from : i;
}

/**
 * findChild for a key at or after the one that chose child `from` (a batch's sorted keys): the
 * next key's child is usually `from` or close after it, so the search gallops from there (probes
 * at from + 1, + 2, + 4, ...) before it bisects, instead of bisecting all of [from, n).
 */
export function findChildFrom(node: BNode, kw: Int32Array, C: number, from: number): number {
  const { dv, u8, ko, n } = node;
  // Find lo <= answer < hi, where answer = the first entry after `from` whose chunk is > the key.
  let lo = from + 1;
  let step = 1;
  let hi = lo;
  while (hi < n && cmpWords(kw, dv, u8, ko + hi * C, C) >= 0) {
    lo = hi + 1;
    hi = lo + step;
    step *= 2;
  }
  if (hi > n) hi = n;
  return upperBoundAt(dv, u8, ko, hi, kw, C, lo) - 1;
}

/** Leaf: index of the entry whose chunk equals the key chunk, or -1. */
export function findExact(node: BNode, kw: Int32Array, C: number): number {
  return findExactAt(node.dv, node.u8, node.ko, node.n, kw, C);
}

// ---------------------------------------------------------------------------------------------
// Chunk size 8 (the default), for lookups: the key chunk is two words (k0, k1) held in
// registers, and a probe reads the second word only when the first ones are equal.

/** upperBoundAt for C = 8: the first of chunks [lo, hi) at ko that is > the key chunk (hi if none). */
export function upperBound8(dv: DataView, ko: number, lo: number, hi: number, k0: number, k1: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const o = ko + 8 * mid;
    const c0 = dv.getInt32(o, false) ^ SIGN;
    if (c0 < k0 || (c0 === k0 && (dv.getInt32(o + 4, false) ^ SIGN) <= k1)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** findExactIn for C = 8: the index of the chunk equal to the key chunk among [lo, hi), or -1. */
export function findExact8(dv: DataView, ko: number, lo: number, hi: number, k0: number, k1: number): number {
  let z = hi - 1;
  while (lo <= z) {
    const mid = (lo + z) >> 1;
    const o = ko + 8 * mid;
    const c0 = dv.getInt32(o, false) ^ SIGN;
    if (c0 < k0) lo = mid + 1;
    else if (c0 > k0) z = mid - 1;
    else {
      const c1 = dv.getInt32(o + 4, false) ^ SIGN;
      if (c1 < k1) lo = mid + 1;
      else if (c1 > k1) z = mid - 1;
      else return mid;
    }
  }
  return -1;
}
