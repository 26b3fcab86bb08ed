/**
 * The write-ahead index: the newest version of every key written since the last index
 * flush, per store, in memory. Entries are immutable (a write replaces the entry). A
 * snapshot freezes the current map instead of copying it; the next write then copies the
 * map once (copy-on-write), so snapshots cost nothing while no one writes.
 */
import type { WriteOp } from './database.js';
import { KeyFilter } from './key-filter.js';
import { sortByKey } from './key-sort.js';
import { KIND_DELETE } from './record.js';

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

/**
 * The entry a write makes: with its seq, address and size once its record is laid out in a
 * frame (0 for a transaction's reads of its own writes, before), and its value if kept.
 */
export function entryOfWrite(op: WriteOp, seq: number, addr: number, size: number, value: Uint8Array | null): WalEntry {
  return {
    str: op.key.str, key: op.key.bytes, keyIsString: op.key.isString, seq, addr,
    deleted: op.kind === KIND_DELETE, valueType: op.valueType, value, size,
  };
}

/** What readers need of a WAL index, live or frozen. */
export interface WalView {
  readonly size: number;
  /** The entry of a key, given as its latin1 string and its bytes (the same key). */
  get(str: string, bytes: Uint8Array): WalEntry | undefined;
  entries(): IterableIterator<WalEntry>;
  /**
   * Entries within the bounds (latin1 string order), ascending, read lazily: finding the span
   * is two binary searches, so a seek that reads 10 entries costs the same over a WAL of
   * 16,000 entries as over one of 100 (building the whole run as an array cost 0.4 ms).
   */
  range(lo: string | null, loInclusive: boolean, hi: string | null, hiInclusive: boolean): WalSpan;
}

/** A run of WAL entries in key order: entry i of `length`. */
export interface WalSpan {
  readonly length: number;
  at(i: number): WalEntry;
  /** Ends the span's hold on a live WAL index; idempotent. */
  release(): void;
}

/** Fewer out-of-order writes than this are left to the next reader (see wantsOrdering). */
const IDLE_ORDER_MIN = 1024;

export const EMPTY_SPAN: WalSpan = { length: 0, at: () => { throw new RangeError('empty WAL span'); }, release: () => {} };

abstract class SortedWal implements WalView {
  protected abstract map: Map<string, WalEntry>;
  /**
   * Entries in key order (null: rebuild from the map by a sort), all but those of `pending`.
   * Entries, not keys: a range reads them without a Map lookup each (a lookup in a Map of ~60k
   * entries cost ~300 ns, ~10% of a scan's time per entry read from the WAL).
   */
  protected abstract sorted: WalEntry[] | null;
  /**
   * Writes since `sorted` was last merged that did not go at its end (unsorted; a key may be
   * here more than once, and also in `sorted`). A key's last entry here is its newest, the
   * map's: once a key has gone here it is never `sorted`'s last, so no later write to it goes
   * anywhere else. A reader merges them in: sorting the few and one pass over the rest.
   * Dropping `sorted` instead, as before, made the first range after one write to a
   * 43k-entry WAL sort it all again (~50 ms).
   */
  protected abstract pending: WalEntry[];
  /** Every key of `map` (and maybe others): most reads miss the WAL (see key-filter.ts). */
  protected abstract filter: KeyFilter;

  get size(): number {
    return this.map.size;
  }

  get(str: string, bytes: Uint8Array): WalEntry | undefined {
    return this.filter.mayHave(bytes) ? this.map.get(str) : undefined;
  }

  entries(): IterableIterator<WalEntry> {
    return this.map.values();
  }

  /**
   * Every entry in key order, with `extra` (a commit's newer entries) taking precedence. The
   * result is the index's own array when there is no `extra`: read it, do not keep it.
   */
  sortedWith(extra: ReadonlyMap<string, WalEntry> | undefined): readonly WalEntry[] {
    const sorted = this.sortedEntries();
    if (!extra || extra.size === 0) return sorted;
    return mergeNewest(sorted, sortByKey([...extra.values()]));
  }

  /** `sorted` with `pending` merged in. New arrays: views frozen earlier may share the old ones. */
  protected sortedEntries(): WalEntry[] {
    if (this.sorted === null) {
      this.sorted = sortByKey([...this.map.values()]);
      this.pending = [];
    } else if (this.pending.length > 0) {
      this.sorted = mergeNewest(this.sorted, sortByKey(this.pending));
      this.pending = [];
    }
    return this.sorted;
  }

  range(lo: string | null, loInclusive: boolean, hi: string | null, hiInclusive: boolean): WalSpan {
    const s = this.sortedEntries();
    // First index whose key is past `lo` (or at it, when inclusive), and past `hi` likewise.
    const a = lo === null ? 0 : bound(s, lo, loInclusive);
    const b = hi === null ? s.length : bound(s, hi, !hiInclusive);
    return b <= a ? EMPTY_SPAN : this.span(s, a, b - a);
  }

  protected span(s: readonly WalEntry[], from: number, length: number): WalSpan {
    return new ArraySpan(s, from, length, null);
  }
}

/**
 * Entries [from, from + length) of a sorted array, which must not change while in use: a
 * span of a live WAL index holds it (its `owner`) until released, so that writes copy.
 */
class ArraySpan implements WalSpan {
  private readonly map: Map<string, WalEntry> | null;

  constructor(
    private readonly s: readonly WalEntry[],
    private readonly from: number,
    readonly length: number,
    private owner: WalIndex | null,
  ) {
    this.map = owner === null ? null : owner.hold();
  }

  at(i: number): WalEntry {
    return this.s[this.from + i]!;
  }

  release(): void {
    const o = this.owner;
    if (o !== null) {
      this.owner = null;
      o.unhold(this.map!);
    }
  }
}

/**
 * Sorted entries `s` with the sorted entries `p` merged in. A key may repeat in `p` (stably
 * sorted: its last entry is the newest) and may be in `s` too (the entry of `p` is newer).
 */
function mergeNewest(s: readonly WalEntry[], p: readonly WalEntry[]): WalEntry[] {
  const out: WalEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < s.length || j < p.length) {
    if (j < p.length && (i === s.length || p[j]!.str <= s[i]!.str)) {
      const k = p[j]!.str;
      while (j + 1 < p.length && p[j + 1]!.str === k) j++;
      if (i < s.length && s[i]!.str === k) i++;
      out.push(p[j++]!);
    } else {
      out.push(s[i++]!);
    }
  }
  return out;
}

function* keysOf(map: Map<string, WalEntry>): Generator<Uint8Array> {
  for (const e of map.values()) yield e.key;
}

/** Bytes of key and kept value an entry holds in memory. */
function heldBytes(e: WalEntry): number {
  return e.key.length + (e.value === null ? 0 : e.value.length);
}

/** The first index of sorted `s` whose key is ≥ k (`atOrAfter`) or > k (otherwise). */
function bound(s: readonly WalEntry[], k: string, atOrAfter: boolean): number {
  let l = 0;
  let h = s.length;
  while (l < h) {
    const m = (l + h) >>> 1;
    const x = s[m]!.str;
    if (x < k || (!atOrAfter && x === k)) l = m + 1;
    else h = m;
  }
  return l;
}

/** A WAL index as it was when frozen; release() when done so writers stop copying. */
export class FrozenWal extends SortedWal {
  constructor(
    protected map: Map<string, WalEntry>,
    protected sorted: WalEntry[] | null,
    protected pending: WalEntry[],
    protected filter: KeyFilter,
    private readonly onRelease: () => void,
  ) {
    super();
  }

  release(): void {
    this.onRelease();
  }
}

export class WalIndex extends SortedWal {
  protected map = new Map<string, WalEntry>();
  protected sorted: WalEntry[] | null = [];
  protected pending: WalEntry[] = [];
  protected filter = new KeyFilter();
  /** Frozen views that share `map`: a write must copy it first. */
  private holders = 0;
  /** Memory the entries hold: key bytes and the small values kept in the index. */
  bytes = 0;
  /** The entries' key bytes alone. */
  keyBytes = 0;

  /** Adds or replaces; returns the entry it replaced. */
  set(e: WalEntry): WalEntry | undefined {
    if (this.holders > 0) {
      this.map = new Map(this.map);
      this.sorted = this.sorted?.slice() ?? null;
      this.pending = this.pending.slice();
      this.holders = 0;
    }
    const old = this.map.get(e.str);
    this.map.set(e.str, e);
    if (!old) {
      if (this.filter.full) this.filter = KeyFilter.of(keysOf(this.map), this.map.size);
      else this.filter.add(e.key);
    }
    this.bytes += heldBytes(e) - (old ? heldBytes(old) : 0);
    this.keyBytes += old ? 0 : e.key.length;
    const s = this.sorted;
    if (s !== null) {
      const n = s.length;
      if (n > 0 && s[n - 1]!.str === e.str) {
        s[n - 1] = e; // the last key again: in place
      } else if (!old && (n === 0 || s[n - 1]!.str < e.str)) {
        s.push(e); // keys written in order go at the end: one comparison, not a search
      } else if (this.pending.length < 2 * this.map.size + 1024) {
        this.pending.push(e);
      } else {
        this.sorted = null; // overwritten over and over with no reader: rebuild when one comes
        this.pending = [];
      }
    }
    return old;
  }

  /**
   * Whether ordering the out-of-order writes now (order()) is worth it while the writer is
   * idle: enough of them to matter, and enough against the sorted entries that the merge's
   * pass over those is paid for (each merge at least a quarter new entries, so ordering at
   * every idle moment costs at most a constant factor more than one sort at the next flush,
   * which then finds them in order).
   */
  get wantsOrdering(): boolean {
    const p = this.sorted === null ? this.map.size : this.pending.length;
    return p >= IDLE_ORDER_MIN && 4 * p >= (this.sorted?.length ?? 0);
  }

  /** Merges the out-of-order writes into the key order now, not in the next reader. */
  order(): void {
    this.sortedEntries();
  }

  clear(): void {
    this.map = new Map();
    this.sorted = [];
    this.pending = [];
    this.filter = new KeyFilter();
    this.holders = 0;
    this.bytes = 0;
    this.keyBytes = 0;
  }

  freeze(): FrozenWal {
    const map = this.hold();
    let released = false;
    return new FrozenWal(this.map, this.sorted, this.pending, this.filter, () => {
      if (released) return;
      released = true;
      this.unhold(map);
    });
  }

  /**
   * A live range is read lazily, so the map and the key order it reads must not change under
   * it: it holds them like a frozen view until its iterator ends, and a write meanwhile copies.
   */
  protected override span(s: readonly WalEntry[], from: number, length: number): WalSpan {
    return new ArraySpan(s, from, length, this);
  }

  /** Makes the next write copy the map first; returns the map held, for unhold (once per hold). */
  hold(): Map<string, WalEntry> {
    this.holders++;
    return this.map;
  }

  /** Ends one hold of `map` (a write since has copied, and nothing more is owed to it then). */
  unhold(map: Map<string, WalEntry>): void {
    if (this.map === map && this.holders > 0) this.holders--;
  }
}
