/**
 * The write-ahead index: the newest version of every key written since the last index
 * flush, per store, in memory. Entries are immutable (a write replaces the entry). A
 * snapshot freezes the current map instead of copying it; the next write then copies the
 * map once (copy-on-write), so snapshots cost nothing while no one writes.
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

/** What readers need of a WAL index, live or frozen. */
export interface WalView {
  readonly size: number;
  get(str: string): WalEntry | undefined;
  entries(): IterableIterator<WalEntry>;
  /** Entries within the bounds (latin1 string order), as a new array, ascending. */
  range(lo: string | null, loInclusive: boolean, hi: string | null, hiInclusive: boolean): WalEntry[];
}

abstract class SortedWal implements WalView {
  protected abstract map: Map<string, WalEntry>;
  protected abstract sorted: string[] | null;

  get size(): number {
    return this.map.size;
  }

  get(str: string): WalEntry | undefined {
    return this.map.get(str);
  }

  entries(): IterableIterator<WalEntry> {
    return this.map.values();
  }

  /** Every entry in key order, with `extra` (a commit's newer entries) taking precedence. */
  sortedWith(extra: ReadonlyMap<string, WalEntry> | undefined): WalEntry[] {
    let keys = this.sortedKeys();
    if (extra && extra.size > 0) {
      const added: string[] = [];
      for (const k of extra.keys()) if (!this.map.has(k)) added.push(k);
      // The engine's keys are latin1 strings: the default sort is byte order, natively.
      keys = added.length > 0 ? keys.concat(added).sort() : keys;
    }
    const out = new Array<WalEntry>(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = extra?.get(keys[i]!) ?? this.map.get(keys[i]!)!;
    return out;
  }

  protected sortedKeys(): string[] {
    return (this.sorted ??= [...this.map.keys()].sort());
  }

  range(lo: string | null, loInclusive: boolean, hi: string | null, hiInclusive: boolean): WalEntry[] {
    const s = this.sortedKeys();
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

/** A WAL index as it was when frozen; release() when done so writers stop copying. */
export class FrozenWal extends SortedWal {
  constructor(protected map: Map<string, WalEntry>, protected sorted: string[] | null, private readonly onRelease: () => void) {
    super();
  }

  release(): void {
    this.onRelease();
  }
}

export class WalIndex extends SortedWal {
  protected map = new Map<string, WalEntry>();
  protected sorted: string[] | null = [];
  /** Frozen views that share `map`: a write must copy it first. */
  private holders = 0;

  /** Adds or replaces; returns the entry it replaced. */
  set(e: WalEntry): WalEntry | undefined {
    if (this.holders > 0) {
      this.map = new Map(this.map);
      this.sorted = this.sorted?.slice() ?? null;
      this.holders = 0;
    }
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
    this.map = new Map();
    this.sorted = [];
    this.holders = 0;
  }

  freeze(): FrozenWal {
    const map = this.map;
    this.holders++;
    let released = false;
    return new FrozenWal(map, this.sorted, () => {
      if (released) return;
      released = true;
      if (this.map === map && this.holders > 0) this.holders--;
    });
  }
}
