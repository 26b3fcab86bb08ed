/**
 * The write-ahead index: the newest version of every key written since the last index
 * flush, per store, in memory. Entries are immutable (a write replaces the entry). A
 * snapshot freezes the current map instead of copying it; the next write then copies the
 * map once (copy-on-write), so snapshots cost nothing while no one writes.
 *
 * The entries are kept in columns (WalColumns), not as objects: an entry object with views
 * of its key and value and a boxed address kept ~300 bytes in four objects alive per write
 * until the next flush, and every scavenge copied them (a random-order load spent ~13% of
 * its CPU in scavenges). The columns hold the same in typed arrays, plus references to the
 * shared 64 KiB chunks the key and value bytes already live in (slab.ts). Readers get entry
 * objects made on demand; they die young.
 */
import type { BatchOp } from '../hbtrie/index.js';
import type { WriteOp } from './database.js';
import { keyHash } from './key-hash.js';
import { entryStr, sortByKey } from './key-sort.js';
import { KIND_DELETE } from './record.js';
import { SlotTable } from './slot-table.js';

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

/** Bits of WalColumns.info above the value type. */
const INFO_DELETED = 0x100;
const INFO_STRING_KEY = 0x200;
const INFO_TYPE = 0xff;
const FIRST_CAPACITY = 1024;

/**
 * The entries of a WAL index, a slot each, in columns. Slots are only appended (a write to a
 * key takes a new slot; the map then names it) until the index is cleared, so a frozen view
 * reading slots below the count it knew reads what it froze. A cleared index reuses its
 * columns unless a view still holds them (`holds`); then it starts new ones.
 */
class WalColumns {
  count = 0;
  /** Views (frozen indexes, live spans) that read these columns. */
  holds = 0;
  /** Arrays of the columns' capacity (filled by index: no growth by push). */
  strs = new Array<string>(FIRST_CAPACITY).fill('');
  /** The memory the key and the kept value lie in, and where. */
  keyBufs = new Array<ArrayBufferLike | null>(FIRST_CAPACITY).fill(null);
  valueBufs = new Array<ArrayBufferLike | null>(FIRST_CAPACITY).fill(null);
  keyAt = new Uint32Array(FIRST_CAPACITY);
  keyLength = new Uint32Array(FIRST_CAPACITY);
  valueAt = new Uint32Array(FIRST_CAPACITY);
  /** -1: the value is not kept (read it through addr). */
  valueLength = new Int32Array(FIRST_CAPACITY);
  seq = new Float64Array(FIRST_CAPACITY);
  addr = new Float64Array(FIRST_CAPACITY);
  size = new Float64Array(FIRST_CAPACITY);
  /** The value type, INFO_DELETED, INFO_STRING_KEY. */
  info = new Uint16Array(FIRST_CAPACITY);

  /** A new slot; `info` is the value type with INFO_DELETED and INFO_STRING_KEY. */
  add(str: string, k: Uint8Array, info: number, seq: number, addr: number, size: number, v: Uint8Array | null): number {
    const s = this.count;
    if (s === this.seq.length) this.grow();
    this.strs[s] = str;
    this.keyBufs[s] = k.buffer;
    this.keyAt[s] = k.byteOffset;
    this.keyLength[s] = k.length;
    if (v === null) {
      this.valueBufs[s] = null;
      this.valueLength[s] = -1;
    } else {
      this.valueBufs[s] = v.buffer;
      this.valueAt[s] = v.byteOffset;
      this.valueLength[s] = v.length;
    }
    this.seq[s] = seq;
    this.addr[s] = addr;
    this.size[s] = size;
    this.info[s] = info;
    this.count = s + 1;
    return s;
  }

  /** Slot s as an entry object (made now: the caller's to read, not to keep for long). */
  entry(s: number): WalEntry {
    const info = this.info[s]!;
    const n = this.valueLength[s]!;
    return {
      str: this.strs[s]!, key: this.key(s), keyIsString: (info & INFO_STRING_KEY) !== 0, seq: this.seq[s]!,
      addr: this.addr[s]!, deleted: (info & INFO_DELETED) !== 0, valueType: info & INFO_TYPE,
      value: n < 0 ? null : new Uint8Array(this.valueBufs[s]!, this.valueAt[s]!, n), size: this.size[s]!,
    };
  }

  key(s: number): Uint8Array {
    return new Uint8Array(this.keyBufs[s]!, this.keyAt[s]!, this.keyLength[s]!);
  }

  deleted(s: number): boolean {
    return (this.info[s]! & INFO_DELETED) !== 0;
  }

  /** Bytes of key and kept value slot s holds in memory. */
  heldBytes(s: number): number {
    const n = this.valueLength[s]!;
    return this.keyLength[s]! + (n < 0 ? 0 : n);
  }

  /** Empty again, keeping the arrays' memory (and not the chunks the old slots named). */
  reset(): void {
    const n = this.count;
    this.count = 0;
    this.strs.fill('', 0, n);
    this.keyBufs.fill(null, 0, n);
    this.valueBufs.fill(null, 0, n);
  }

  private grow(): void {
    const cap = 2 * this.seq.length;
    const more = <T>(a: T[], fill: T): T[] => {
      const b = a.slice();
      b.length = cap;
      return b.fill(fill, a.length);
    };
    this.strs = more(this.strs, '');
    this.keyBufs = more(this.keyBufs, null);
    this.valueBufs = more(this.valueBufs, null);
    const to = <A extends Uint32Array | Int32Array | Float64Array | Uint16Array>(a: A, make: (n: number) => A): A => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.keyAt = to(this.keyAt, (n) => new Uint32Array(n));
    this.keyLength = to(this.keyLength, (n) => new Uint32Array(n));
    this.valueAt = to(this.valueAt, (n) => new Uint32Array(n));
    this.valueLength = to(this.valueLength, (n) => new Int32Array(n));
    this.seq = to(this.seq, (n) => new Float64Array(n));
    this.addr = to(this.addr, (n) => new Float64Array(n));
    this.size = to(this.size, (n) => new Float64Array(n));
    this.info = to(this.info, (n) => new Uint16Array(n));
  }
}

/** What a view holds of a live WAL index (WalIndex.hold). */
interface WalHold {
  readonly map: SlotTable;
  readonly cols: WalColumns;
}

abstract class SortedWal implements WalView {
  /** Key → its newest slot in `cols`. */
  protected abstract map: SlotTable;
  protected abstract cols: WalColumns;
  /**
   * Slots in key order (null: rebuild from the map by a sort), all but those of `pending`.
   * Slots, not keys: a range reads them without a lookup each (a lookup in a Map of ~60k
   * entries cost ~300 ns, ~10% of a scan's time per entry read from the WAL).
   */
  protected abstract sorted: number[] | null;
  /**
   * Writes since `sorted` was last merged that did not go at its end (unsorted; a key may be
   * here more than once, and also in `sorted`). A key's last slot here is its newest, the
   * map's: once a key has gone here it is never `sorted`'s last, so no later write to it goes
   * anywhere else. A reader merges them in: sorting the few and one pass over the rest.
   * Dropping `sorted` instead, as before, made the first range after one write to a
   * 43k-entry WAL sort it all again (~50 ms).
   */
  protected abstract pending: number[];

  get size(): number {
    return this.map.size;
  }

  get(str: string, bytes: Uint8Array): WalEntry | undefined {
    const s = this.map.find(keyHash(bytes), str, this.cols.strs);
    return s < 0 ? undefined : this.cols.entry(s);
  }

  *entries(): IterableIterator<WalEntry> {
    const cols = this.cols;
    for (const s of this.map.slots()) yield cols.entry(s);
  }

  /** How many entries are deletions. */
  deletions(): number {
    const cols = this.cols;
    let n = 0;
    for (const s of this.map.slots()) if (cols.deleted(s)) n++;
    return n;
  }

  /**
   * The index's batch for a flush: every entry in key order as (key, record address), with
   * `extra` (a commit's newer entries) taking precedence; and how many of them are deletions.
   */
  flushBatch(extra: ReadonlyMap<string, WalEntry> | undefined): { ops: BatchOp[]; deletions: number } {
    const s = this.sortedSlots();
    const cols = this.cols;
    const strs = cols.strs;
    const x = extra && extra.size > 0 ? sortByKey([...extra.values()], entryStr) : [];
    const ops = new Array<BatchOp>(s.length + x.length);
    let n = 0;
    let deletions = 0;
    let i = 0;
    let j = 0;
    while (i < s.length || j < x.length) {
      if (j < x.length && (i === s.length || x[j]!.str <= strs[s[i]!]!)) {
        const e = x[j++]!;
        if (i < s.length && strs[s[i]!] === e.str) i++;
        ops[n++] = { key: e.key, value: e.addr };
        if (e.deleted) deletions++;
      } else {
        const slot = s[i++]!;
        ops[n++] = { key: cols.key(slot), value: cols.addr[slot]! };
        if (cols.deleted(slot)) deletions++;
      }
    }
    ops.length = n;
    return { ops, deletions };
  }

  /** `sorted` with `pending` merged in. New arrays: views frozen earlier may share the old ones. */
  protected sortedSlots(): number[] {
    const strs = this.cols.strs;
    const strOf = (s: number): string => strs[s]!;
    if (this.sorted === null) {
      this.sorted = sortByKey(this.map.slots(), strOf);
      this.pending = [];
    } else if (this.pending.length > 0) {
      this.sorted = mergeNewest(this.sorted, sortByKey(this.pending, strOf), strs);
      this.pending = [];
    }
    return this.sorted;
  }

  range(lo: string | null, loInclusive: boolean, hi: string | null, hiInclusive: boolean): WalSpan {
    const s = this.sortedSlots();
    const strs = this.cols.strs;
    // First index whose key is past `lo` (or at it, when inclusive), and past `hi` likewise.
    const a = lo === null ? 0 : bound(s, strs, lo, loInclusive);
    const b = hi === null ? s.length : bound(s, strs, hi, !hiInclusive);
    return b <= a ? EMPTY_SPAN : this.span(s, a, b - a);
  }

  protected span(s: readonly number[], from: number, length: number): WalSpan {
    return new ArraySpan(s, this.cols, from, length, null);
  }
}

/**
 * Entries [from, from + length) of a sorted array of slots, which must not change while in
 * use: a span of a live WAL index holds it (its `owner`) until released, so that writes copy.
 */
class ArraySpan implements WalSpan {
  private readonly held: WalHold | null;

  constructor(
    private readonly s: readonly number[],
    private readonly cols: WalColumns,
    private readonly from: number,
    readonly length: number,
    private owner: WalIndex | null,
  ) {
    this.held = owner === null ? null : owner.hold();
  }

  at(i: number): WalEntry {
    return this.cols.entry(this.s[this.from + i]!);
  }

  release(): void {
    const o = this.owner;
    if (o !== null) {
      this.owner = null;
      o.unhold(this.held!);
    }
  }
}

/**
 * Sorted slots `s` with the sorted slots `p` merged in. A key may repeat in `p` (stably
 * sorted: its last slot is the newest) and may be in `s` too (the slot of `p` is newer).
 */
function mergeNewest(s: readonly number[], p: readonly number[], strs: readonly string[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < s.length || j < p.length) {
    if (j < p.length && (i === s.length || strs[p[j]!]! <= strs[s[i]!]!)) {
      const k = strs[p[j]!]!;
      while (j + 1 < p.length && strs[p[j + 1]!] === k) j++;
      if (i < s.length && strs[s[i]!] === k) i++;
      out.push(p[j++]!);
    } else {
      out.push(s[i++]!);
    }
  }
  return out;
}

/** The first index of sorted slots `s` whose key is ≥ k (`atOrAfter`) or > k (otherwise). */
function bound(s: readonly number[], strs: readonly string[], k: string, atOrAfter: boolean): number {
  let l = 0;
  let h = s.length;
  while (l < h) {
    const m = (l + h) >>> 1;
    const x = strs[s[m]!]!;
    if (x < k || (!atOrAfter && x === k)) l = m + 1;
    else h = m;
  }
  return l;
}

/** A WAL index as it was when frozen; release() when done so writers stop copying. */
export class FrozenWal extends SortedWal {
  constructor(
    protected map: SlotTable,
    protected cols: WalColumns,
    protected sorted: number[] | null,
    protected pending: number[],
    private readonly onRelease: () => void,
  ) {
    super();
  }

  release(): void {
    this.onRelease();
  }
}

export class WalIndex extends SortedWal {
  protected map = new SlotTable();
  protected cols = new WalColumns();
  protected sorted: number[] | null = [];
  protected pending: number[] = [];
  /** Frozen views that share `map`: a write must copy it first. */
  private holders = 0;
  /** Memory the entries hold: key bytes and the small values kept in the index. */
  bytes = 0;
  /** The entries' key bytes alone. */
  keyBytes = 0;

  /**
   * Adds or replaces; returns the slot of the entry it replaced (-1: none), for addrAt and
   * sizeAt (a slot, not an entry object: a write over a key must not make one).
   */
  set(e: WalEntry): number {
    const info = e.valueType | (e.deleted ? INFO_DELETED : 0) | (e.keyIsString ? INFO_STRING_KEY : 0);
    return this.insert(e.str, e.key, info, e.seq, e.addr, e.size, e.value);
  }

  /**
   * set() for a durable write, its record at `addr` (`size` bytes), keeping `value` (the
   * write's encoded value, or null): the write's fields go into the columns without an entry
   * object, which would live from the commit's frame until the device has written it.
   */
  setWrite(op: WriteOp, seq: number, addr: number, size: number, value: Uint8Array | null): number {
    const info = op.valueType | (op.kind === KIND_DELETE ? INFO_DELETED : 0) | (op.key.isString ? INFO_STRING_KEY : 0);
    return this.insert(op.key.str, op.key.bytes, info, seq, addr, size, value);
  }

  private insert(str: string, key: Uint8Array, info: number, seq: number, addr: number, size: number, value: Uint8Array | null): number {
    if (this.holders > 0) {
      this.map = this.map.copy();
      this.sorted = this.sorted?.slice() ?? null;
      this.pending = this.pending.slice();
      this.holders = 0;
    }
    const cols = this.cols;
    const map = this.map;
    const slot = cols.add(str, key, info, seq, addr, size, value);
    const prev = map.set(keyHash(key), slot, cols.strs);
    this.bytes += cols.heldBytes(slot) - (prev < 0 ? 0 : cols.heldBytes(prev));
    this.keyBytes += prev < 0 ? key.length : 0;
    const s = this.sorted;
    if (s !== null) {
      const n = s.length;
      const strs = cols.strs;
      if (n > 0 && strs[s[n - 1]!] === str) {
        s[n - 1] = slot; // the last key again: in place
      } else if (prev < 0 && (n === 0 || strs[s[n - 1]!]! < str)) {
        s.push(slot); // keys written in order go at the end: one comparison, not a search
      } else if (this.pending.length < 2 * map.size + 1024) {
        this.pending.push(slot);
      } else {
        this.sorted = null; // overwritten over and over with no reader: rebuild when one comes
        this.pending = [];
      }
    }
    return prev;
  }

  /** The record address of slot s (as set() returned it; -1 for -1), until the next clear. */
  addrAt(s: number): number {
    return s < 0 ? -1 : this.cols.addr[s]!;
  }

  /** The record size of slot s (0 for -1), until the next clear. */
  sizeAt(s: number): number {
    return s < 0 ? 0 : this.cols.size[s]!;
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
    this.sortedSlots();
  }

  clear(): void {
    // Frozen views may share the table (a write would have copied it); then start a new one.
    if (this.holders > 0) this.map = new SlotTable();
    else this.map.clear();
    // Views still reading the columns keep them; otherwise the next writes reuse them.
    if (this.cols.holds > 0) this.cols = new WalColumns();
    else this.cols.reset();
    this.sorted = [];
    this.pending = [];
    this.holders = 0;
    this.bytes = 0;
    this.keyBytes = 0;
  }

  freeze(): FrozenWal {
    const held = this.hold();
    let released = false;
    return new FrozenWal(this.map, this.cols, this.sorted, this.pending, () => {
      if (released) return;
      released = true;
      this.unhold(held);
    });
  }

  /**
   * A live range is read lazily, so the map and the key order it reads must not change under
   * it: it holds them like a frozen view until its iterator ends, and a write meanwhile copies.
   */
  protected override span(s: readonly number[], from: number, length: number): WalSpan {
    return new ArraySpan(s, this.cols, from, length, this);
  }

  /** Makes the next write copy the map first, and a clear start new columns; for unhold (once per hold). */
  hold(): WalHold {
    this.holders++;
    this.cols.holds++;
    return { map: this.map, cols: this.cols };
  }

  /** Ends one hold (a write since has copied the map, and nothing more is owed to it then). */
  unhold(h: WalHold): void {
    h.cols.holds--;
    if (this.map === h.map && this.holders > 0) this.holders--;
  }
}
