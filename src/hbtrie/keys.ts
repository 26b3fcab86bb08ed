/**
 * Key encoding and chunking.
 *
 * The trie never stores or compares raw keys directly: it works on the *encoded* key, a sequence
 * of fixed-size chunks of C bytes (C = chunk size, 4..64, default 8). Each chunk carries D = C - 1
 * key bytes followed by one marker byte:
 *
 *     chunk i = key[i*D .. i*D + D)  (zero-padded past the end of the key)  ++  marker
 *     marker  = min(key.length - i*D, C)
 *
 * so the marker is C (= D + 1) for a chunk that is full and followed by more key bytes, and
 * 1..D for the last chunk (the number of key bytes it really holds). A key of length n has
 * ceil(n / D) chunks.
 *
 * Properties (proved in docs/FORMAT-hbtrie.md, checked by test/hbtrie-keys.test.ts):
 *  - Order preserving: unsigned byte order of raw keys == byte order of encoded keys.
 *  - Prefix free: no encoded key is a proper prefix of another (the last chunk's marker is < C,
 *    every other chunk's marker is C), so a key always ends in a leaf entry of its own and never
 *    "inside" a sub-trie.
 *
 * None of the functions below materialize the encoding: they compute chunk bytes on the fly from
 * the raw key, so the hot paths do not allocate.
 */

import { HBTrieError } from './errors.js';

/** Largest key accepted (64 KiB - 1, as in ForestDB). */
export const MAX_KEY_LENGTH = 65535;
export const MIN_CHUNK_SIZE = 4;
export const MAX_CHUNK_SIZE = 64;
export const DEFAULT_CHUNK_SIZE = 8;

/** Throws KEY_EMPTY / KEY_TOO_LONG / INVALID_ARGUMENT for a key the trie cannot hold. */
export function checkKey(key: Uint8Array, maxKeyLength: number = MAX_KEY_LENGTH): void {
  if (!(key instanceof Uint8Array)) {
    throw new HBTrieError('INVALID_ARGUMENT', 'key must be a Uint8Array');
  }
  if (key.length === 0) throw new HBTrieError('KEY_EMPTY', 'key is empty: keys must be 1 byte or longer');
  if (key.length > maxKeyLength) {
    throw new HBTrieError('KEY_TOO_LONG', `key is ${key.length} bytes; the maximum is ${maxKeyLength}`);
  }
}

/** Number of chunks in the encoding of a key of `len` (>= 1) bytes. */
export function chunkCount(len: number, chunkSize: number): number {
  return Math.ceil(len / (chunkSize - 1));
}

/** Marker byte of chunk `level` of a key of length `len` (0 if the key has no such chunk). */
function marker(len: number, level: number, C: number): number {
  const rem = len - level * (C - 1);
  return rem <= 0 ? 0 : rem < C ? rem : C;
}

/**
 * Compares chunk `level` of `key` with the encoded chunk stored at buf[off, off + C).
 * Negative, zero or positive like a comparator (key chunk minus stored chunk).
 */
export function cmpKeyChunk(key: Uint8Array, level: number, C: number, buf: Uint8Array, off: number): number {
  const D = C - 1;
  const len = key.length;
  let p = level * D;
  if (p + D <= len) {
    for (let j = 0; j < D; j++) {
      const d = key[p + j]! - buf[off + j]!;
      if (d !== 0) return d;
    }
  } else {
    for (let j = 0; j < D; j++, p++) {
      const d = (p < len ? key[p]! : 0) - buf[off + j]!;
      if (d !== 0) return d;
    }
  }
  return marker(len, level, C) - buf[off + D]!;
}

/** Compares chunk `level` of two keys. */
export function cmpKeysChunk(a: Uint8Array, b: Uint8Array, level: number, C: number): number {
  const D = C - 1;
  const la = a.length;
  const lb = b.length;
  let p = level * D;
  const end = p + D;
  if (end <= la && end <= lb) {
    for (; p < end; p++) {
      const d = a[p]! - b[p]!;
      if (d !== 0) return d;
    }
  } else {
    for (; p < end; p++) {
      const d = (p < la ? a[p]! : 0) - (p < lb ? b[p]! : 0);
      if (d !== 0) return d;
    }
  }
  return marker(la, level, C) - marker(lb, level, C);
}

/** Writes the encoded chunk `level` of `key` into out[off, off + C). */
export function writeChunk(key: Uint8Array, level: number, C: number, out: Uint8Array, off: number): void {
  const D = C - 1;
  const len = key.length;
  const p = level * D;
  if (p + D <= len) {
    for (let j = 0; j < D; j++) out[off + j] = key[p + j]!;
  } else {
    for (let j = 0; j < D; j++) out[off + j] = p + j < len ? key[p + j]! : 0;
  }
  out[off + D] = marker(len, level, C);
}

/** Encoded chunks [from, to) of `key` as a new array of (to - from) * C bytes. */
export function encodeChunks(key: Uint8Array, from: number, to: number, C: number): Uint8Array {
  const out = new Uint8Array((to - from) * C);
  for (let l = from; l < to; l++) writeChunk(key, l, C, out, (l - from) * C);
  return out;
}

/** The whole encoded key (for documentation, tests and tools; the trie itself never builds it). */
export function encodeKey(key: Uint8Array, C: number): Uint8Array {
  return encodeChunks(key, 0, chunkCount(key.length, C), C);
}

/**
 * First chunk index >= `from` at which the encodings of `a` and `b` differ, or -1 if the keys are
 * equal. (Chunks below `from` are assumed equal and not examined.)
 */
export function firstDiffChunk(a: Uint8Array, b: Uint8Array, from: number, C: number): number {
  const D = C - 1;
  const la = a.length;
  const lb = b.length;
  const min = la < lb ? la : lb;
  let i = from * D;
  while (i < min && a[i] === b[i]) i++;
  if (i < min) return Math.floor(i / D);
  if (la === lb) return -1;
  // One key is a proper prefix of the other: they differ in the marker of the shorter key's
  // last chunk.
  // (A result below `from` means the caller's assumption was wrong; callers check.)
  return Math.floor((min - 1) / D);
}

/**
 * Unsigned byte-order comparison of raw keys (the order of the index). Returns <0, 0, >0.
 * Compares the first bytes in JS (most keys differ early) and leaves long equal runs to memcmp.
 */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const la = a.length;
  const lb = b.length;
  const n = la < lb ? la : lb;
  const m = n < 24 ? n : 24;
  for (let i = 0; i < m; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  if (n <= 24) return la - lb;
  return Buffer.compare(a, b);
}

/**
 * Byte equality of raw keys. Short keys in JS, eight bytes per step (measured: about 40 ns for
 * 43 bytes against 70 for a byte loop); long ones with memcmp, whose call costs less than a JS
 * loop over more than 64 bytes.
 */
export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  if (n <= 64) {
    let i = 0;
    for (const e = n - 7; i < e; i += 8) {
      if (
        a[i] !== b[i] ||
        a[i + 1] !== b[i + 1] ||
        a[i + 2] !== b[i + 2] ||
        a[i + 3] !== b[i + 3] ||
        a[i + 4] !== b[i + 4] ||
        a[i + 5] !== b[i + 5] ||
        a[i + 6] !== b[i + 6] ||
        a[i + 7] !== b[i + 7]
      ) {
        return false;
      }
    }
    for (; i < n; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (a[0] !== b[0] || a[n - 1] !== b[n - 1]) return false;
  return Buffer.compare(a, b) === 0;
}
