/**
 * The WAL index's map from a key to its newest slot (wal-index.ts): open addressing with
 * linear probing over one Int32Array of (keyHash, slot + 1) cells, at most half full.
 *
 * Why not a Map<string, number>: a random-order load spent ~9% of its CPU in the WAL
 * index's set(), which made two lookups in a Map of up to ~57,000 entries (one to find the
 * key's old slot, one to set the new), each a few cache misses into the Map's chains and a
 * hash of a key string made for this write; a copy for a frozen view rebuilt the Map entry by
 * entry. Here a lookup is a probe of adjacent cells that hold the hash, so a key the table
 * does not hold costs about one cache miss without touching the key, and a copy is one
 * typed-array copy. A get that misses the WAL (most gets) costs no more than the Bloom filter
 * that this replaces did. Entries are never removed (a WAL index only grows until cleared),
 * so there are no deletion marks.
 */
const MIN_CELLS = 1024;

export class SlotTable {
  /** Cell i: cells[2i] the key's hash, cells[2i + 1] its slot + 1 (0: an empty cell). */
  private cells: Int32Array;
  private mask: number;
  /** Keys held. */
  size = 0;

  constructor(cells = MIN_CELLS) {
    this.cells = new Int32Array(2 * cells);
    this.mask = cells - 1;
  }

  /** The slot of the key with hash `h` and latin1 string `str` (strs: each slot's string), or -1. */
  find(h: number, str: string, strs: readonly string[]): number {
    const c = this.cells;
    const mask = this.mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = c[2 * i + 1]!;
      if (s === 0) return -1;
      if (c[2 * i] === h && strs[s - 1] === str) return s - 1;
    }
  }

  /** Maps the key (hash h, string strs[slot]) to `slot`; returns the slot it had (-1: none). */
  set(h: number, slot: number, strs: readonly string[]): number {
    const c = this.cells;
    const mask = this.mask;
    const str = strs[slot];
    let i = h & mask;
    for (; ; i = (i + 1) & mask) {
      const s = c[2 * i + 1]!;
      if (s === 0) break;
      if (c[2 * i] === h && strs[s - 1] === str) {
        c[2 * i + 1] = slot + 1;
        return s - 1;
      }
    }
    c[2 * i] = h;
    c[2 * i + 1] = slot + 1;
    if (2 * ++this.size > mask + 1) this.grow();
    return -1;
  }

  /** Every slot held, in no particular order. */
  slots(): number[] {
    const c = this.cells;
    const out = new Array<number>(this.size);
    let n = 0;
    for (let i = 1; i < c.length; i += 2) if (c[i] !== 0) out[n++] = c[i]! - 1;
    return out;
  }

  /** An independent copy (for a writer while frozen views read this one). */
  copy(): SlotTable {
    const t = new SlotTable(1);
    t.cells = this.cells.slice();
    t.mask = this.mask;
    t.size = this.size;
    return t;
  }

  /** Empty again, keeping its memory. */
  clear(): void {
    if (this.size > 0) this.cells.fill(0);
    this.size = 0;
  }

  private grow(): void {
    const old = this.cells;
    const cells = old.length; // twice the old number of cells
    const c = new Int32Array(2 * cells);
    const mask = cells - 1;
    for (let j = 0; j < old.length; j += 2) {
      const s = old[j + 1]!;
      if (s === 0) continue;
      const h = old[j]!;
      let i = h & mask;
      while (c[2 * i + 1] !== 0) i = (i + 1) & mask;
      c[2 * i] = h;
      c[2 * i + 1] = s;
    }
    this.cells = c;
    this.mask = mask;
  }
}
