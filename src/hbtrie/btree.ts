/**
 * Searches inside one decoded B+-tree node. A node's `keys` are n chunks of C bytes in ascending
 * order. In a leaf they are the chunks of the entries; in an internal node keys[i] is the exact
 * smallest chunk stored under child i.
 *
 * Searches do not loop over chunk bytes: the first search of a node builds its search array
 * (`BNode.words`), one record of S = W + 2 32-bit words per entry: the chunk as W = ceil(C / 4)
 * big-endian words with the sign bit flipped (so signed comparison is byte order), zero-padded,
 * then the pointer as two words (low 32 bits, high 21 bits with bit 31 = sub-trie), so the
 * pointer of the entry a search ends on is in the same cache line as its chunk. The searched
 * key's chunk is converted once per node level (keyWords). A probe then costs a couple of integer
 * comparisons, and a lookup touches few cache lines (the index is memory-bound when it is large).
 */

import { allocInt32, type BNode } from './node.js';

const TWO32 = 0x1_0000_0000;

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

/** Entries per fence group. */
const G = 16;

/** Number of fence words before the entry records of a node of n entries. */
function fenceWords(n: number): number {
  return (n + G - 1) >> 4;
}

/**
 * The node's search array, built on first use. Only for written nodes (pointers final): the
 * writer clears it when it fixes up the pointers of new nodes.
 *
 * Layout: F = ceil(n / 16) fence words (the first word of entries 0, 16, 32, ...), then the n
 * entry records of S = W + 2 words. A search first narrows to one group of 16 entries through
 * the fence (one cache line for a 4 KiB node), then searches inside the group.
 */
export function nodeWords(node: BNode, C: number): Int32Array {
  let words = node.words;
  if (words !== null) return words;
  const W = (C + 3) >> 2;
  const S = W + 2;
  const n = node.n;
  const F = fenceWords(n);
  const keys = node.keys;
  const ptrs = node.ptrs;
  const kinds = node.kinds;
  words = allocInt32(F + n * S);
  const whole = (C & 3) === 0;
  for (let i = 0; i < n; i++) {
    const base = i * C;
    let w = F + i * S;
    if (whole) {
      for (let b = base; b < base + C; b += 4, w++) {
        words[w] = ((keys[b]! << 24) | (keys[b + 1]! << 16) | (keys[b + 2]! << 8) | keys[b + 3]!) ^ 0x80000000;
      }
    } else {
      let acc = 0;
      for (let j = 0; j < W * 4; j++) {
        acc = (acc << 8) | (j < C ? keys[base + j]! : 0);
        if ((j & 3) === 3) {
          words[w++] = acc ^ 0x80000000;
          acc = 0;
        }
      }
    }
    const v = ptrs[i]!;
    const lo = v >>> 0;
    words[w] = lo;
    words[w + 1] = ((v - lo) / TWO32) | (kinds !== null && kinds[i] !== 0 ? 0x80000000 : 0);
    if ((i & (G - 1)) === 0) words[i >> 4] = words[F + i * S]!;
  }
  node.words = words;
  return words;
}

/** Pointer of entry i (of a node of n entries) from the search array. */
export function wordsPtr(words: Int32Array, n: number, i: number, W: number): number {
  const b = fenceWords(n) + i * (W + 2) + W;
  return (words[b + 1]! & 0x1fffff) * TWO32 + (words[b]! >>> 0);
}

/** True if leaf entry i points to a sub-trie. */
export function wordsIsTrie(words: Int32Array, n: number, i: number, W: number): boolean {
  return words[fenceWords(n) + i * (W + 2) + W + 1]! < 0;
}

/** Compares the key words with the chunk of the entry whose record starts at `base`. */
function cmpAt(kw: Int32Array, words: Int32Array, base: number, W: number): number {
  for (let w = 0; w < W; w++) {
    const d = kw[w]! - words[base + w]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Compares the key words with entry i's chunk (node of n entries): negative if the key is smaller. */
export function cmpW(kw: Int32Array, words: Int32Array, n: number, i: number, W: number): number {
  return cmpAt(kw, words, fenceWords(n) + i * (W + 2), W);
}

/**
 * Narrows a search to [lo, hi): every entry before lo has a chunk < the key and every entry from
 * hi on a chunk > the key (judged on the first word, through the fence). Returns lo * 65536 + hi.
 */
function narrow(words: Int32Array, n: number, k0: number): number {
  const F = fenceWords(n);
  // Last fence word < k0, and first fence word > k0.
  let a = 0;
  let b = F;
  while (a < b) {
    const m = (a + b) >> 1;
    if (words[m]! < k0) a = m + 1;
    else b = m;
  }
  // a = first fence >= k0: groups before a - 1 are entirely < k0 in their first word... only the
  // group a - 1 may hold entries >= k0.
  const lo = a > 0 ? (a - 1) << 4 : 0;
  let c = a;
  let d = F;
  while (c < d) {
    const m = (c + d) >> 1;
    if (words[m]! <= k0) c = m + 1;
    else d = m;
  }
  // c = first fence > k0: entries from group c on are > the key.
  const hi = c < F ? c << 4 : n;
  return lo * 65536 + hi;
}

/** Index of the first entry in [from, n) whose chunk is >= the key chunk (n if none). */
export function lowerBound(node: BNode, kw: Int32Array, C: number, from = 0): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  const S = W + 2;
  const n = node.n;
  const F = fenceWords(n);
  const r = narrow(words, n, kw[0]!);
  let lo = Math.max(from, Math.floor(r / 65536));
  let hi = Math.max(lo, r % 65536);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpAt(kw, words, F + mid * S, W) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first entry whose chunk is > the key chunk (n if none). */
export function upperBound(node: BNode, kw: Int32Array, C: number): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  const S = W + 2;
  const n = node.n;
  const F = fenceWords(n);
  const r = narrow(words, n, kw[0]!);
  let lo = Math.floor(r / 65536);
  let hi = r % 65536;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpAt(kw, words, F + mid * S, W) >= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Internal node: index of the child whose range holds the key chunk (last i >= from with chunk_i <= key, else `from`). */
export function findChild(node: BNode, kw: Int32Array, C: number, from = 0): number {
  const i = upperBound(node, kw, C) - 1;
  return i < from ? from : i;
}

/** Leaf: index of the entry whose chunk equals the key chunk, or -1. */
export function findExact(node: BNode, kw: Int32Array, C: number): number {
  const words = nodeWords(node, C);
  const W = (C + 3) >> 2;
  const S = W + 2;
  const n = node.n;
  const F = fenceWords(n);
  const r = narrow(words, n, kw[0]!);
  let lo = Math.floor(r / 65536);
  let hi = (r % 65536) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = cmpAt(kw, words, F + mid * S, W);
    if (c === 0) return mid;
    if (c > 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
