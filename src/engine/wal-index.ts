/**
 * The write-ahead index: the newest version of every key written since the last index
 * flush, per store, in memory. Entries are immutable (a write replaces the entry), so an
 * iterator that copied the sorted run it needs keeps a consistent view.
 */
export interface WalEntry {
  readonly str: string;
  readonly key: Uint8Array;
  readonly keyIsString: boolean;
  readonly seq: number;
  /** Packed record address (record.ts). */
  readonly addr: number;
  readonly deleted: boolean;
  readonly valueType: number;
  /** The encoded value when small enough to keep; otherwise read through addr. */
  readonly value: Uint8Array | null;
  /** Bytes the record occupies in the log. */
  readonly size: number;
}

export class WalIndex {
  private readonly map = new Map<string, WalEntry>();
  private sorted: string[] | null = [];

  get size(): number {
    return this.map.size;
  }

  get(str: string): WalEntry | undefined {
    return this.map.get(str);
  }

  /** Adds or replaces; returns the entry it replaced. */
  set(e: WalEntry): WalEntry | undefined {
    const old = this.map.get(e.str);
    this.map.set(e.str, e);
    if (!old && this.sorted) {
      const s = this.sorted;
      let lo = 0;
      let hi = s.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (s[mid]! < e.str) lo = mid + 1;
        else hi = mid;
      }
      if (s.length - lo > 2048) this.sorted = null; // rebuilt by sort on demand
      else s.splice(lo, 0, e.str);
    }
    return old;
  }

  clear(): void {
    this.map.clear();
    this.sorted = [];
  }

  entries(): IterableIterator<WalEntry> {
    return this.map.values();
  }

  /** Entries with lo ≤ key < hi (by latin1 string order), as a new array, ascending. */
  range(lo: string | null, loInclusive: boolean, hi: string | null, hiInclusive: boolean): WalEntry[] {
    const s = (this.sorted ??= [...this.map.keys()].sort());
    let a = 0;
    if (lo !== null) {
      let l = 0;
      let h = s.length;
      while (l < h) {
        const m = (l + h) >>> 1;
        if (s[m]! < lo || (!loInclusive && s[m] === lo)) l = m + 1;
        else h = m;
      }
      a = l;
    }
    const out: WalEntry[] = [];
    for (let i = a; i < s.length; i++) {
      const k = s[i]!;
      if (hi !== null && (k > hi || (!hiInclusive && k === hi))) break;
      out.push(this.map.get(k)!);
    }
    return out;
  }
}
