/**
 * A Bloom filter over the WAL index's keys (their bytes), so that a read of a key the WAL
 * does not hold skips the Map lookup. After a random-order load the WAL may hold ~57,000
 * entries (see WAL_GROWTH in database.ts) and most gets miss it: a miss in a Map that size
 * cost ~570 ns of a ~2.9 µs get (the probe that became bench/engine-wal-get.ts), two probes
 * into this filter a few ns.
 *
 * Two bits per key from one 32-bit hash, at least 16 bits per key (false positives ≲ 1.5%,
 * and they only cost the Map lookup). The filter never forgets: the WAL index only grows
 * until it is cleared, and it rebuilds the filter, larger, from its keys' hashes when it fills up.
 * Frozen views of the index share its filter: keys written after a freeze only make their
 * false positives likelier.
 */
const MIN_BITS = 1 << 12;
const BITS_PER_KEY = 16;
/**
 * Keys longer than this hash their first and last HASHED_EDGE bytes and their length: a
 * collision costs a Map lookup, hashing a 16 KiB key would cost more.
 */
const HASHED_EDGE = 32;

export class KeyFilter {
  private words: Int32Array;
  private mask: number;
  private count = 0;

  /** A filter sized for `keys` keys (it takes more; `full` says when to rebuild). */
  constructor(keys = 0) {
    let bits = MIN_BITS;
    while (bits < keys * BITS_PER_KEY * 2) bits *= 2;
    this.words = new Int32Array(bits >>> 5);
    this.mask = bits - 1;
  }

  /** A filter of `size` keys given by their keyHash(), with room for as many again. */
  static of(hashes: Iterable<number>, size: number): KeyFilter {
    const f = new KeyFilter(size);
    for (const h of hashes) f.addHash(h);
    return f;
  }

  /** More keys than the filter was sized for: false positives grow; rebuild it larger. */
  get full(): boolean {
    return this.count * BITS_PER_KEY > this.mask;
  }

  /** Adds a key by its keyHash() (the WAL index keeps its keys' hashes for rebuilding). */
  addHash(h: number): void {
    const w = this.words;
    const a = h & this.mask;
    const b = second(h) & this.mask;
    w[a >>> 5]! |= 1 << (a & 31);
    w[b >>> 5]! |= 1 << (b & 31);
    this.count++;
  }

  /** False: the key was never added. True: it may have been. */
  mayHave(key: Uint8Array): boolean {
    const h = keyHash(key);
    const w = this.words;
    const a = h & this.mask;
    if ((w[a >>> 5]! & (1 << (a & 31))) === 0) return false;
    const b = second(h) & this.mask;
    return (w[b >>> 5]! & (1 << (b & 31))) !== 0;
  }
}

/**
 * FNV-1a over the bytes, with a final mix. Bytes, not the latin1 string: charCodeAt on a
 * string built by concatenation (a cons string, as most keys made with template literals
 * are) cost twice as much as the whole filter probe over bytes.
 */
export function keyHash(b: Uint8Array): number {
  const n = b.length;
  let h = 0x811c9dc5 ^ n;
  if (n <= 2 * HASHED_EDGE) {
    for (let i = 0; i < n; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  } else {
    for (let i = 0; i < HASHED_EDGE; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    for (let i = n - HASHED_EDGE; i < n; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** The second probe: the hash's bits remixed (double hashing from one hash). */
function second(h: number): number {
  const x = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return x ^ (x >>> 12);
}
