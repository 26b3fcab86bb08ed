/**
 * Reads over one store as a view sees it: the live store (its WAL index and current index
 * root), a snapshot, or a past commit. A view is a root plus a WAL index; both are
 * immutable for a snapshot, so its answers never change.
 */
import { ForestError } from '../errors.js';
import { compareKeys } from '../hbtrie/index.js';
import { resolveBounds, type Bounds, type RangeOptions } from './bounds.js';
import { keyBytes, keyFromRecord, latin1, type Key, type KeyBytes, type Value } from './codec.js';
import type { Database } from './database.js';
import { FLAG_STRING_KEY, isTombstone, KIND_DELETE, type DecodedRecord } from './record.js';
import { EMPTY_SPAN, type WalEntry, type WalView } from './wal-index.js';

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
    /** For a live view: keeps compaction from reusing what an open iterator may still read. */
    private readonly pin: (() => () => void) | null = null,
  ) {}

  get name(): string {
    return this.view.name;
  }

  /** The value, or undefined. Synchronous: a cache miss reads the device in place. */
  get(key: Key): Value | undefined {
    const k = keyBytes(key);
    this.assertOpen();
    const e = this.view.wal.get(k.str);
    if (e) return e.deleted ? undefined : this.valueOf(e);
    const addr = this.indexed(k);
    if (addr === undefined) return undefined;
    // Decoded straight from the record: no Version object, no latin1 key string.
    const rec = this.db.guard(() => this.db.readRecordSync(addr));
    return confirmed(rec, k, this.view.id) ? this.db.decode(rec.valueType, rec.value) : undefined;
  }

  /** The value and the sequence number of the write that stored it, or undefined. */
  getEntry(key: Key): Entry | undefined {
    const k = keyBytes(key);
    const v = this.version(k);
    return v ? { key: keyFromRecord(v.key, v.keyIsString ? FLAG_STRING_KEY : 0), value: this.valueOf(v), seq: v.seq } : undefined;
  }

  has(key: Key): boolean {
    return this.version(keyBytes(key)) !== undefined;
  }

  getMany(keys: readonly Key[]): (Value | undefined)[] {
    if (!Array.isArray(keys)) throw new ForestError('INVALID_ARGUMENT', 'getMany takes an array of keys');
    return keys.map((k) => this.get(k));
  }

  /** The value, or undefined, without blocking the event loop on the device. */
  async getAsync(key: Key): Promise<Value | undefined> {
    const k = keyBytes(key);
    this.assertOpen();
    const e = this.view.wal.get(k.str);
    if (e) {
      if (e.deleted) return undefined;
      if (e.value) return this.db.decode(e.valueType, e.value);
      const rec = await this.db.readRecord(e.addr);
      return this.db.decode(rec.valueType, rec.value);
    }
    const addr = this.indexed(k);
    if (addr === undefined) return undefined;
    const rec = await this.db.readRecord(addr);
    return confirmed(rec, k, this.view.id) ? this.db.decode(rec.valueType, rec.value) : undefined;
  }

  /**
   * Entries in key order (byte order of the UTF-8 or raw key), as a synchronous iterable over
   * the state at the time of the call: writes that commit while iterating are not seen.
   */
  range(opts: RangeOptions = {}): IterableIterator<[Key, Value]> {
    const db = this.db;
    return this.merge<[Key, Value]>(
      resolveBounds(opts), false,
      (v) => [keyOf(v), this.valueOf(v)],
      (rec) => [keyFromRecord(rec.key, rec.flags), db.decode(rec.valueType, rec.value)],
    );
  }

  /** Keys only, in order; same options as range(). */
  keys(opts: RangeOptions = {}): IterableIterator<Key> {
    return this.merge<Key>(resolveBounds(opts), false, keyOf, (rec) => keyFromRecord(rec.key, rec.flags));
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
        if (!wal.get(v.str)) out.push(v);
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** @internal The live version of a key in this view; undefined when absent or deleted. */
  version(k: KeyBytes): Version | undefined {
    this.assertOpen();
    const e = this.view.wal.get(k.str);
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
   * cursor merged, the WAL winning a tie. Both are captured now; the generator reads lazily.
   */
  versions(b: Bounds, withDeleted: boolean): Generator<Version> {
    return this.merge(b, withDeleted, asVersion, fromRecord);
  }

  /**
   * The merge behind versions() and range(): `fromWal` and `fromIndex` make the items, so
   * range() builds its [key, value] pairs straight from the records (no Version object and
   * no latin1 key string per entry: a seek reading 10 entries spent a third of its time in
   * garbage collection). Keys are compared as bytes. The bounds are exact for a prefix too
   * (resolveBounds narrows them to [prefix, successor)), so no per-entry prefix test.
   */
  private merge<T>(b: Bounds, withDeleted: boolean, fromWal: (e: Version) => T, fromIndex: (rec: DecodedRecord, addr: number) => T): Generator<T> {
    this.assertOpen();
    const wal = this.view.wal.range(b.lo?.str ?? null, b.loInclusive, b.hi?.str ?? null, b.hiInclusive);
    const root = this.view.root;
    const db = this.db;
    const cursor = root === null ? null : db.guard(() => db.trieIndex.range(root, {
      ...(b.lo && (b.loInclusive ? { gte: b.lo.bytes } : { gt: b.lo.bytes })),
      ...(b.hi && (b.hiInclusive ? { lte: b.hi.bytes } : { lt: b.hi.bytes })),
      reverse: b.reverse,
    }));
    const { reverse, limit } = b;
    const unpin = this.pin?.() ?? null;
    const release = unpin || wal.release
      ? (): void => {
        unpin?.();
        wal.release?.();
      }
      : null;
    const gen = (function* (): Generator<T> {
      try {
        let produced = 0;
        let w = 0;
        let addr = 0;
        let rec: DecodedRecord | null = null;
        const nextIndexed = (): void => {
          rec = null;
          if (!cursor) return;
          try {
            for (;;) {
              const r = cursor.next();
              if (r.done) return;
              // A deletion is known from its address; no need to read it unless asked for.
              if (!withDeleted && isTombstone(r.value)) continue;
              addr = r.value;
              rec = db.readRecordSync(addr);
              return;
            }
          } catch (e) {
            throw db.toError(e);
          }
        };
        nextIndexed();
        while (produced < limit) {
          const we = w < wal.length ? wal.at(reverse ? wal.length - 1 - w : w) : null;
          const t = rec as DecodedRecord | null;
          if (we === null && t === null) return;
          const c = we === null ? 1 : t === null ? -1 : compareKeys(we.key, t.key) * (reverse ? -1 : 1);
          if (c <= 0) {
            if (c === 0) nextIndexed(); // the WAL version is newer
            w++;
            if (we!.deleted && !withDeleted) continue;
            produced++;
            yield fromWal(we!);
          } else {
            const a = addr;
            nextIndexed();
            if (t!.kind === KIND_DELETE && !withDeleted) continue;
            produced++;
            yield fromIndex(t!, a);
          }
        }
      } finally {
        release?.();
      }
    })();
    // An iterator dropped unfinished releases its pin (and WAL hold) when it is collected.
    if (release) unpinOnCollect.register(gen, release);
    return gen;
  }

  /** The index's candidate address for a key, unless the index says it is deleted. */
  private indexed(k: KeyBytes): number | undefined {
    const root = this.view.root;
    if (root === null) return undefined;
    const addr = this.db.guard(() => this.db.trieIndex.find(root, k.bytes));
    return addr === undefined || isTombstone(addr) ? undefined : addr;
  }
}

const unpinOnCollect = new FinalizationRegistry<() => void>((release) => release());

const asVersion = (v: Version): Version => v;

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
  const a = rec.key;
  const b = k.bytes;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A view of a store that does not exist (yet) in a snapshot: always empty. */
export function emptyView(name: string, checkpointSeq: number): StoreView {
  const none: WalView = { size: 0, get: () => undefined, entries: () => [][Symbol.iterator](), range: () => EMPTY_SPAN };
  return { id: -1, name, root: null, wal: none, checkpointSeq };
}
