/**
 * The hash of a key's bytes that the WAL index's table (slot-table.ts) is keyed by: MurmurHash3's
 * 32-bit mixing, four bytes at a time, over every byte of the key. Every byte, because keys that
 * collide share a probe run in the table: hashing only the ends of long keys (as a Bloom filter
 * here once did) would put every file path of one length with the same first and last 32 bytes
 * into one run, and each write among n such keys would compare n strings.
 *
 * Bytes, not the latin1 string: charCodeAt on a string built by concatenation (a cons string,
 * as most keys made with template literals are) cost twice as much as a probe over bytes.
 */
export function keyHash(b: Uint8Array): number {
  const n = b.length;
  let h = n;
  const words = n & ~3;
  let i = 0;
  for (; i < words; i += 4) {
    h ^= mixWord(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = 0;
    for (let s = 0; i < n; i++, s += 8) k |= b[i]! << s;
    h ^= mixWord(k);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function mixWord(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}
