/**
 * Reads over one store as a view sees it: the live store (its WAL index and current index
 * root), a snapshot, or a past commit. A view is a root plus a WAL index; both are
 * immutable for a snapshot, so its answers never change.
 */
import { ForestError } from '../errors.js';
import type { Cursor, RangeOptions as TrieRange } from '../hbtrie/index.js';
import { resolveBounds, type Bounds, type RangeOptions } from './bounds.js';
import { decodeValueAt, keyAt, keyBytes, keyFromRecord, latin1, lookupKey, type Key, type KeyBytes, type Value } from './codec.js';
import type { Database } from './database.js';
import { FLAG_STRING_KEY, isTombstone, KIND_DELETE, type DecodedRecord } from './record.js';
import { EMPTY_SPAN, type WalEntry, type WalSpan, type WalView } from './wal-index.js';

export interface StoreView {
  readonly id: number;
  readonly name: string;
  /** Index root, or null for an empty index. */
  readonly root: number | null;
  /** Writes since the last index flush, newer than anything in the index. */
  readonly wal: WalView;
  /** Every record the index names has a sequence number ≤ this (the last index flush). */
  readonly checkpointSeq: number;
}

/** One version of a key: a WAL entry, or the same fields read from an indexed record. */
export type Version = WalEntry;

/** A value with the sequence number of the write that stored it (for `ifVersion`). */
export interface Entry {
  key: Key;
  value: Value;
  seq: number;
}

/** One record of the changes feed: the latest version of a key written after `since`. */
export interface Change {
  key: Key;
  seq: number;
  deleted: boolean;
  /** The value, absent for a deletion. */
  value?: Value;
}

export interface ChangesOptions {
  /** Changes with a sequence number greater than this. Default 0 (everything). */
  since?: number;
  /** At most this many changes. */
  limit?: number;
}

export class StoreReader {
  /** @internal */
  constructor(
    protected readonly db: Database,
    /** @internal */ readonly view: StoreView,
    private readonly assertOpen: () => void,
    /**
     * The commit this view is of, or undefined for the live view (whose commit moves). An open
     * iterator and a pending getAsync pin it (db.pin), so compaction does not reuse what they
     * may still read, even if a snapshot they came from is closed meanwhile.
     */
    private readonly commit?: number,
  ) {}

  get name(): string {
    return this.view.name;
  }

  /** The value, or undefined. Synchronous: a cache miss reads the device in place. */
  get(key: Key): Value | undefined {
    const k = lookupKey(key);
    this.assertOpen();
    const e = this.view.wal.get(k.str, k.bytes);
    if (e) return e.deleted ? undefined : this.valueOf(e);
    const addr = this.indexed(k);
    if (addr === undefined) return undefined;
    // Decoded straight from the record's bytes: no Version object, no latin1 key string, no
    // views of the key or value.
    let rec: DecodedRecord;
    try {
      rec = this.db.readRecordSync(addr);
    } catch (err) {
      throw this.db.toError(err);
    }
    return confirmed(rec, k, this.view.id) ? decodeValueAt(rec.valueType, rec.buf, rec.valueAt, rec.valueEnd) : undefined;
  }

  /** The value and the sequence number of the write that stored it, or undefined. */
  getEntry(key: Key): Entry | undefined {
    const k = keyBytes(key);
    const v = this.version(k);
    return v ? { key: keyFromRecord(v.key, v.keyIsString ? FLAG_STRING_KEY : 0), value: this.valueOf(v), seq: v.seq } : undefined;
  }

  has(key: Key): boolean {
    return this.version(lookupKey(key)) !== undefined;
  }

  getMany(keys: readonly Key[]): (Value | undefined)[] {
    if (!Array.isArray(keys)) throw new ForestError('INVALID_ARGUMENT', 'getMany takes an array of keys');
    return keys.map((k) => this.get(k));
  }

  /**
   * The value, or undefined, without blocking the event loop on the device. The value is the
   * one the key had at the call: while the record is read, the view's commit is pinned, so a
   * compaction finishing meanwhile (or the view's snapshot closing) does not let new writes
   * reuse the space being read.
   */
  async getAsync(key: Key): Promise<Value | undefined> {
    const k = keyBytes(key);
    this.assertOpen();
    const e = this.view.wal.get(k.str, k.bytes);
    let addr: number | undefined;
    if (e) {
      if (e.deleted) return undefined;
      if (e.value) return this.db.decode(e.valueType, e.value);
      addr = e.addr;
    } else {
      addr = this.indexed(k);
      if (addr === undefined) return undefined;
    }
    const pinned = this.db.pin(this.commit);
    try {
      const rec = await this.db.readRecord(addr);
      return e || confirmed(rec, k, this.view.id) ? this.db.decode(rec.valueType, rec.value) : undefined;
    } finally {
      this.db.unpin(pinned);
    }
  }

  /**
   * Entries in key order (byte order of the UTF-8 or raw key), as a synchronous iterable over
   * the state at the time of the call: writes that commit while iterating are not seen.
   */
  range(opts: RangeOptions = {}): IterableIterator<[Key, Value]> {
    return this.merge<[Key, Value]>(resolveBounds(opts), false, MAKE_PAIR);
  }

  /** Keys only, in order; same options as range(). */
  keys(opts: RangeOptions = {}): IterableIterator<Key> {
    return this.merge<Key>(resolveBounds(opts), false, MAKE_KEY);
  }

  /**
   * The changes feed: the latest version of every key written after `since`, deletions
   * included, in sequence order. Cheap when `since` is at or after the last index flush (the
   * WAL index answers); otherwise it reads every indexed record's header once.
   */
  changes(opts: ChangesOptions = {}): IterableIterator<Change> {
    if (typeof opts !== 'object' || opts === null) throw new ForestError('INVALID_ARGUMENT', 'changes options must be an object');
    const limit = opts.limit ?? Infinity;
    if (typeof limit !== 'number' || Number.isNaN(limit)) throw new ForestError('INVALID_ARGUMENT', 'limit must be a number');
    const list = this.changedVersions(opts.since ?? 0);
    const self = this;
    return (function* () {
      let n = 0;
      for (const v of list) {
        if (n++ >= limit) return;
        const key = keyOf(v);
        yield v.deleted ? { key, seq: v.seq, deleted: true } : { key, seq: v.seq, deleted: false, value: self.valueOf(v) };
      }
    })();
  }

  /** @internal The latest versions (deletions included) with seq > since, in seq order. */
  changedVersions(since: number): Version[] {
    if (!Number.isSafeInteger(since) || since < 0) throw new ForestError('INVALID_ARGUMENT', `since must be a sequence number (an integer ≥ 0), got ${String(since)}`);
    this.assertOpen();
    const wal = this.view.wal;
    const out: Version[] = [];
    for (const e of wal.entries()) if (e.seq > since) out.push(e);
    const root = this.view.root;
    if (root !== null && since < this.view.checkpointSeq) {
      const db = this.db;
      const cursor = db.guard(() => db.trieIndex.range(root, {}));
      for (;;) {
        const r = db.guard(() => cursor.next());
        if (r.done) break;
        const rec = db.guard(() => db.readRecordSync(r.value));
        if (rec.seq <= since) continue;
        const v = fromRecord(rec, r.value);
        if (!wal.get(v.str, v.key)) out.push(v);
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** @internal The live version of a key in this view; undefined when absent or deleted. */
  version(k: KeyBytes): Version | undefined {
    this.assertOpen();
    const e = this.view.wal.get(k.str, k.bytes);
    if (e) return e.deleted ? undefined : e;
    const addr = this.indexed(k);
    if (addr === undefined) return undefined;
    const rec = this.db.guard(() => this.db.readRecordSync(addr));
    return confirmed(rec, k, this.view.id) ? fromRecord(rec, addr) : undefined;
  }

  /** @internal The value of a version (read from its record when the WAL did not keep it). */
  valueOf(v: Version): Value {
    return this.db.decode(v.valueType, this.valueBytes(v));
  }

  /** @internal The encoded value bytes of a version. */
  valueBytes(v: Version): Uint8Array {
    if (v.value) return v.value;
    return this.db.guard(() => this.db.readRecordSync(v.addr)).value;
  }

  /**
   * @internal Versions within the bounds, in order, newest per key: the WAL run and the index
   * cursor merged, the WAL winning a tie. Both are captured now; the iterator reads lazily.
   */
  versions(b: Bounds, withDeleted: boolean): Generator<Version> {
    return this.merge<Version>(b, withDeleted, MAKE_VERSION);
  }

  /**
   * The merge behind versions(), range() and keys(): `make` says what to build per entry, so
   * range() builds its [key, value] pairs straight from the records' bytes (no Version object,
   * no latin1 key string, no views per entry: a seek reading 10 entries spent a third of its
   * time in garbage collection). Keys are compared as bytes. The bounds are exact for a prefix
   * too (resolveBounds narrows them to [prefix, successor)), so no per-entry prefix test.
   */
  private merge<T>(b: Bounds, withDeleted: boolean, make: Make): Generator<T> {
    this.assertOpen();
    const wal = this.view.wal.range(b.lo?.str ?? null, b.loInclusive, b.hi?.str ?? null, b.hiInclusive);
    const root = this.view.root;
    const db = this.db;
    let cursor: Cursor | null = null;
    if (root !== null && b.limit > 0) {
      const o: TrieRange = { reverse: b.reverse };
      if (b.lo) {
        if (b.loInclusive) o.gte = b.lo.bytes;
        else o.gt = b.lo.bytes;
      }
      if (b.hi) {
        if (b.hiInclusive) o.lte = b.hi.bytes;
        else o.lt = b.hi.bytes;
      }
      try {
        cursor = db.trieIndex.range(root, o);
      } catch (e) {
        wal.release();
        throw db.toError(e);
      }
    }
    // The view's commit is pinned; a span of a live WAL index holds it (both released by the Hold).
    const hold = new Hold(db, db.pin(this.commit), wal);
    const it = new MergeIterator<T>(db, this, wal, cursor, b.reverse, b.limit, withDeleted, make, hold);
    // An iterator dropped unfinished releases its pin (and WAL hold) when it is collected.
    releaseOnCollect(it);
    return it;
  }

  /** The index's candidate address for a key, unless the index says it is deleted. */
  private indexed(k: KeyBytes): number | undefined {
    const root = this.view.root;
    if (root === null) return undefined;
    let addr: number | undefined;
    try {
      addr = this.db.trieIndex.find(root, k.bytes);
    } catch (e) {
      throw this.db.toError(e);
    }
    return addr === undefined || isTombstone(addr) ? undefined : addr;
  }
}

/** What a merge builds per entry. */
type Make = 0 | 1 | 2;
const MAKE_PAIR = 0;
const MAKE_KEY = 1;
const MAKE_VERSION = 2;

/** How many index entries (and WAL entries) a merge touches ahead together (a power of two). */
const AHEAD = 16;

/**
 * WAL entries a merge touches at first (touchWal): a seek reads only a few of them when most
 * keys are in the index (after the suite's random load, 2 of the 10 entries a seek reads came
 * from its 43k-entry WAL; touching 10 was ~10% of the seek's time).
 */
const WAL_FIRST_TOUCH = 4;

const DONE: IteratorResult<never, undefined> = Object.freeze({ value: undefined, done: true }) as IteratorResult<never, undefined>;

/** A merge's read-ahead arrays (see MergeIterator), reused by later merges. */
class AheadArrays {
  /** Addresses read from the cursor in a burst. */
  readonly addrs = new Float64Array(AHEAD);
  /** Their blocks, as touchRecords left them (undefined: not looked up, or not cached). */
  readonly blocks = new Array<Uint8Array | undefined>(AHEAD).fill(undefined);
  /** The keys and values of the WAL entries touchWal is about to load. */
  readonly views = new Array<Uint8Array | undefined>(2 * AHEAD).fill(undefined);
  /** The WAL entries touchWal made (entries are made on demand: wal-index.ts), for the merge to use. */
  readonly walAhead = new Array<WalEntry | undefined>(AHEAD).fill(undefined);
  /** The record the merge reads next, refilled for each (decodeRecord's `into`). */
  record: DecodedRecord | undefined = undefined;
}

/**
 * Read-ahead arrays of finished merges: allocating them for every range (a Float64Array has a
 * backing store of its own) was ~5% of a seek + 10's time. A few, for nested iterators.
 */
const spareAhead: AheadArrays[] = [];
const SPARE_AHEAD_MAX = 8;

/**
 * The WAL run and the index cursor merged, newest per key (the WAL wins a tie), as an
 * iterator object rather than a generator: no generator frame or closures per range, and the
 * next indexed record is read only when the merge needs it (a seek with a limit of 10 reads
 * 10 records, not 11). Behaves as the generator did: done after its last item, after return()
 * or after an error; releases what it holds (pin, WAL hold) at any of these.
 */
class MergeIterator<T> implements Generator<T> {
  private w = 0;
  /** The WAL span's entry w, or null past its end; undefined until looked up. */
  private we: WalEntry | null | undefined = undefined;
  private produced = 0;
  private done = false;
  /** The index's current entry (its address and record), or null when it must be read next. */
  private rec: DecodedRecord | null = null;
  private addr = 0;
  /** The index has no more entries. */
  private indexEnded: boolean;
  /** Read-ahead arrays, taken when first needed and handed back when the merge ends. */
  private arrays: AheadArrays | null = null;
  /** The next of `arrays.addrs` to read, and how many are left there. */
  private aheadAt = 0;
  private aheadCount = 0;
  private cursorEnded = false;
  /** The WAL positions touchWal last made entries for: [touchFrom, touchAt), in `arrays.walAhead`. */
  private touchFrom = 0;
  private touchAt = 0;
  /** The sum of the bytes touched: kept, so that the loads are not optimized away. */
  private touched = 0;

  constructor(
    private readonly db: Database,
    private readonly reader: StoreReader,
    private readonly wal: WalSpan,
    private readonly cursor: Cursor | null,
    private readonly reverse: boolean,
    private readonly limit: number,
    private readonly withDeleted: boolean,
    private readonly make: Make,
    /** @internal Set until the iterator ends (read by releaseOnCollect). */
    public hold: Hold | null,
  ) {
    this.indexEnded = cursor === null;
  }

  [Symbol.iterator](): Generator<T> {
    return this;
  }

  next(): IteratorResult<T> {
    if (this.done) return DONE;
    try {
      return this.step();
    } catch (e) {
      this.finish();
      throw this.db.toError(e);
    }
  }

  return(value?: unknown): IteratorResult<T> {
    this.finish();
    return { value: value as T, done: true };
  }

  throw(e: unknown): IteratorResult<T> {
    this.finish();
    throw e;
  }

  private finish(): void {
    this.done = true;
    this.rec = null;
    this.we = null;
    const a = this.arrays;
    if (a !== null) {
      this.arrays = null;
      a.blocks.fill(undefined); // no cached block kept alive by a spare
      a.walAhead.fill(undefined);
      a.record = undefined;
      if (spareAhead.length < SPARE_AHEAD_MAX) spareAhead.push(a);
    }
    const h = this.hold;
    if (h !== null) {
      this.hold = null;
      h.release();
    }
  }

  private step(): IteratorResult<T> {
    const wal = this.wal;
    const n = wal.length;
    const reverse = this.reverse;
    const withDeleted = this.withDeleted;
    while (this.produced < this.limit) {
      if (this.rec === null && !this.indexEnded) this.readIndexed();
      // The WAL's current entry, read once per step from the span.
      let we = this.we;
      if (we === undefined) {
        const w = this.w;
        if (w === this.touchAt && w + 1 < n && this.produced + 1 < this.limit) this.touchWal(w, n);
        we = this.we = w >= n ? null : w < this.touchAt && w >= this.touchFrom ? this.arrays!.walAhead[w - this.touchFrom]! : wal.at(reverse ? n - 1 - w : w);
      }
      const t = this.rec;
      if (we === null && t === null) break;
      const c = we === null ? 1 : t === null ? -1 : compareAt(we.key, t.buf, t.keyAt, t.valueAt) * (reverse ? -1 : 1);
      if (c <= 0) {
        if (c === 0) this.rec = null; // the WAL version is newer
        this.w++;
        this.we = undefined;
        if (we!.deleted && !withDeleted) continue;
        this.produced++;
        return { value: this.fromWal(we!), done: false };
      }
      this.rec = null;
      if (t!.kind === KIND_DELETE && !withDeleted) continue;
      this.produced++;
      return { value: this.fromIndex(t!, this.addr), done: false };
    }
    this.finish();
    return DONE;
  }

  /**
   * Reads the cursor's next entry and its record into `rec` (or marks the index ended). The
   * cursor is read AHEAD entries at a time (no more than the range still needs), and their
   * records touched together (LogReader.touchRecords): a full scan of 200,000 keys loaded at
   * random (43,000 of them still in the WAL) went from 135–145 to 90–95 ms warm
   * (bench/engine-scan.ts).
   */
  private readIndexed(): void {
    const arrays = this.arrays ?? this.takeArrays();
    const ahead = arrays.addrs;
    if (this.aheadCount === 0) {
      const cursor = this.cursor!;
      let want = this.limit - this.produced;
      if (want > AHEAD) want = AHEAD;
      let n = 0;
      while (n < want && !this.cursorEnded) {
        const r = cursor.next();
        if (r.done) {
          this.cursorEnded = true;
          break;
        }
        // A deletion is known from its address; no need to read it unless asked for.
        if (!this.withDeleted && isTombstone(r.value)) continue;
        ahead[n++] = r.value;
      }
      if (n === 0) {
        this.indexEnded = true;
        return;
      }
      this.touched += this.db.touchRecords(ahead, n, arrays.blocks);
      this.aheadAt = 0;
      this.aheadCount = n;
    }
    const i = this.aheadAt++;
    const a = ahead[i]!;
    this.aheadCount--;
    this.addr = a;
    // One record object refilled for each: the merge is done with the previous one (built
    // into its result, or passed over) before it reads the next.
    this.rec = arrays.record = this.db.readRecordIn(a, arrays.blocks[i], arrays.record);
  }

  private takeArrays(): AheadArrays {
    return (this.arrays = spareAhead.pop() ?? new AheadArrays());
  }

  /**
   * Loads the span's next WAL entries from `from` together (WAL_FIRST_TOUCH at first, then
   * AHEAD at a time, no more than the range still needs), as LogReader.touchRecords does for
   * records: the entries first (made from the index's columns, kept for the merge in
   * `walAhead`), then the bytes of their keys and values (in the chunks they were copied to at
   * their writes, scattered when keys were written out of order).
   */
  private touchWal(from: number, n: number): void {
    const wal = this.wal;
    const reverse = this.reverse;
    const arrays = this.arrays ?? this.takeArrays();
    const views = arrays.views;
    const made = arrays.walAhead;
    const most = from === 0 ? WAL_FIRST_TOUCH : AHEAD;
    let count = (from + most < n ? from + most : n) - from;
    if (count > this.limit - this.produced) count = this.limit - this.produced;
    this.touchFrom = from;
    this.touchAt = from + count;
    let t = 0;
    for (let i = 0; i < count; i++) {
      const e = (made[i] = wal.at(reverse ? n - 1 - from - i : from + i));
      t += e.str.length;
      views[2 * i] = e.key;
      views[2 * i + 1] = e.value ?? undefined;
    }
    for (let i = 0; i < 2 * count; i++) {
      const v = views[i];
      if (v === undefined) continue;
      if (v.length > 0) t += v[0]! + v[v.length - 1]!;
      views[i] = undefined;
    }
    this.touched += t;
  }

  private fromWal(v: Version): T {
    switch (this.make) {
      case MAKE_PAIR: return [keyOf(v), this.reader.valueOf(v)] as T;
      case MAKE_KEY: return keyOf(v) as T;
      default: return v as T;
    }
  }

  private fromIndex(rec: DecodedRecord, addr: number): T {
    switch (this.make) {
      case MAKE_PAIR: return [
        keyAt(rec.buf, rec.keyAt, rec.valueAt, rec.flags),
        decodeValueAt(rec.valueType, rec.buf, rec.valueAt, rec.valueEnd),
      ] as T;
      case MAKE_KEY: return keyAt(rec.buf, rec.keyAt, rec.valueAt, rec.flags) as T;
      default: return fromRecord(rec, addr) as T;
    }
  }
}

/** Compares key bytes `a` with buf[start, end) in byte order. */
function compareAt(a: Uint8Array, buf: Uint8Array, start: number, end: number): number {
  const bl = end - start;
  const n = a.length < bl ? a.length : bl;
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = buf[start + i]!;
    if (x !== y) return x - y;
  }
  return a.length - bl;
}

/**
 * What an open iterator holds: a pin on its view's commit (db.pin) and its WAL span's hold on
 * a live WAL index. Released once, when the iterator ends or, if dropped open, is collected (the
 * registry's held value must not reference the iterator, so this is an object of its own).
 */
class Hold {
  constructor(
    private db: Database | null,
    private readonly commit: number,
    private span: WalSpan | null,
  ) {}

  release(): void {
    const db = this.db;
    if (db !== null) {
      this.db = null;
      db.unpin(this.commit);
    }
    const s = this.span;
    if (s !== null) {
      this.span = null;
      s.release();
    }
  }
}

const unpinOnCollect = new FinalizationRegistry<Hold>((hold) => hold.release());

/*
 * Registering with a FinalizationRegistry cost ~0.4 µs per range() and kept every iterator
 * (and what it references) reachable from a weak cell: a seek + read 10 spent a quarter of its
 * time in garbage collection. An iterator only needs the registration if it is still open
 * when the code that made it ends its synchronous run (an iterator used up in one run, as
 * for...of does, has released everything by then). So iterators are registered in a
 * microtask, queued with the first of them: those still open then are registered, the others
 * never are (an abandoned one is held by the list until then, so it cannot be collected
 * before it is registered). Their pins themselves are taken at once (range() above), so nothing they
 * may read can be reclaimed meanwhile.
 */
let unregistered: MergeIterator<unknown>[] = [];
let unregisteredCap = 1024;

function releaseOnCollect(it: MergeIterator<unknown>): void {
  if (unregistered.length === 0) queueMicrotask(registerOpen);
  else if (unregistered.length >= unregisteredCap) {
    // A long synchronous run making many iterators: keep only those still open.
    unregistered = unregistered.filter((x) => x.hold !== null);
    unregisteredCap = Math.max(1024, 2 * unregistered.length);
  }
  unregistered.push(it);
}

function registerOpen(): void {
  const list = unregistered;
  unregistered = [];
  unregisteredCap = 1024;
  for (const it of list) if (it.hold !== null) unpinOnCollect.register(it, it.hold);
}

/** A version built from an indexed record. */
export function fromRecord(rec: DecodedRecord, addr: number): Version {
  return {
    str: latin1(rec.key),
    key: rec.key, keyIsString: (rec.flags & FLAG_STRING_KEY) !== 0, seq: rec.seq, addr,
    deleted: rec.kind === KIND_DELETE, valueType: rec.valueType, value: rec.value, size: rec.size,
  };
}

export function keyOf(v: Version): Key {
  return keyFromRecord(v.key, v.keyIsString ? FLAG_STRING_KEY : 0);
}

/** The index returns a candidate; the record's own key and store confirm it. */
function confirmed(rec: DecodedRecord, k: KeyBytes, storeId: number): boolean {
  if (rec.storeId !== storeId || rec.kind === KIND_DELETE) return false;
  const buf = rec.buf;
  const at = rec.keyAt;
  const b = k.bytes;
  if (rec.valueAt - at !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (buf[at + i] !== b[i]) return false;
  return true;
}

/** A view of a store that does not exist (yet) in a snapshot: always empty. */
export function emptyView(name: string, checkpointSeq: number): StoreView {
  const none: WalView = { size: 0, get: () => undefined, entries: () => [][Symbol.iterator](), range: () => EMPTY_SPAN };
  return { id: -1, name, root: null, wal: none, checkpointSeq };
}
