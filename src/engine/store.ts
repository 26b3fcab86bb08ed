import { ForestError } from '../errors.js';
import { keyBytes, keyFromRecord, type Key, type KeyBytes, type Value } from './codec.js';
import type { Database, StoreState } from './database.js';
import { FLAG_STRING_KEY, KIND_DELETE, KIND_PUT, type DecodedRecord } from './record.js';
import type { WalEntry } from './wal-index.js';

export interface RangeOptions {
  gt?: Key;
  gte?: Key;
  lt?: Key;
  lte?: Key;
  /** Only keys that start with this (combined with the bounds above). */
  prefix?: Key;
  reverse?: boolean;
  /** At most this many entries. */
  limit?: number;
}

/**
 * A named key-value store inside a database (ForestDB's KV store): its own keys, its own
 * index, isolated from the other stores. Reads are synchronous (`get`, `has`, `range`) or
 * asynchronous (`getAsync`); writes resolve once their commit is durable.
 */
export class Store {
  /** @internal */
  constructor(private readonly db: Database, private readonly state: StoreState) {}

  get name(): string {
    return this.state.name;
  }

  put(key: Key, value: Value): Promise<void> {
    return this.db.write(this.state, KIND_PUT, key, value);
  }

  del(key: Key): Promise<void> {
    return this.db.write(this.state, KIND_DELETE, key);
  }

  /** The value, or undefined. Synchronous: a cache miss reads the device in place. */
  get(key: Key): Value | undefined {
    const k = keyBytes(key);
    const found = this.db.lookup(this.state, k);
    if (found === undefined) return undefined;
    if (typeof found !== 'number') return this.walValueSync(found);
    const rec = this.db.guard(() => this.db.readRecordSync(found));
    return this.confirmed(rec, k) ? this.db.decode(rec.valueType, rec.value) : undefined;
  }

  /** The value, or undefined, without blocking the event loop on the device. */
  async getAsync(key: Key): Promise<Value | undefined> {
    const k = keyBytes(key);
    const found = this.db.lookup(this.state, k);
    if (found === undefined) return undefined;
    if (typeof found !== 'number') {
      if (found.deleted) return undefined;
      if (found.value) return this.db.decode(found.valueType, found.value);
      const rec = await this.db.readRecord(found.addr);
      return this.db.decode(rec.valueType, rec.value);
    }
    const rec = await this.db.readRecord(found);
    return this.confirmed(rec, k) ? this.db.decode(rec.valueType, rec.value) : undefined;
  }

  has(key: Key): boolean {
    const k = keyBytes(key);
    const found = this.db.lookup(this.state, k);
    if (found === undefined) return false;
    if (typeof found !== 'number') return !found.deleted;
    return this.confirmed(this.db.guard(() => this.db.readRecordSync(found)), k);
  }

  getMany(keys: readonly Key[]): (Value | undefined)[] {
    if (!Array.isArray(keys)) throw new ForestError('INVALID_ARGUMENT', 'getMany takes an array of keys');
    return keys.map((k) => this.get(k));
  }

  /**
   * Entries in key order (byte order of the UTF-8 or raw key), as a synchronous iterable over
   * the state at the time of the call: writes that commit while iterating are not seen.
   */
  range(opts: RangeOptions = {}): IterableIterator<[Key, Value]> {
    const b = bounds(opts);
    const limit = opts.limit ?? Infinity;
    if (typeof limit !== 'number' || Number.isNaN(limit)) throw new ForestError('INVALID_ARGUMENT', 'limit must be a number');
    const reverse = opts.reverse === true;
    // Capture the view now: the WAL run (entries are immutable) and the index root.
    const wal = this.state.wal.range(b.lo?.str ?? null, b.loInclusive, b.hi?.str ?? null, b.hiInclusive);
    if (reverse) wal.reverse();
    const root = this.state.root;
    const db = this.db;
    const cursor = root === null ? null : db.guard(() => db.trieIndex.range(root, {
      ...(b.lo && (b.loInclusive ? { gte: b.lo.bytes } : { gt: b.lo.bytes })),
      ...(b.hi && (b.hiInclusive ? { lte: b.hi.bytes } : { lt: b.hi.bytes })),
      reverse,
    }));
    const prefix = b.prefix;
    const self = this;
    function* iterate(): Generator<[Key, Value]> {
      let produced = 0;
      let w = 0;
      let t = nextIndexed();
      function nextIndexed(): { str: string; rec: DecodedRecord } | null {
        if (!cursor) return null;
        const r = db.guard(() => cursor.next());
        if (r.done) return null;
        const rec = db.guard(() => db.readRecordSync(r.value));
        return { str: Buffer.from(rec.key).toString('latin1'), rec };
      }
      while (produced < limit) {
        const we = w < wal.length ? wal[w]! : null;
        if (!we && !t) return;
        let takeWal: boolean;
        if (!we) takeWal = false;
        else if (!t) takeWal = true;
        else if (we.str === t.str) {
          takeWal = true;
          t = nextIndexed(); // the WAL version is newer
        } else takeWal = reverse ? we.str > t.str : we.str < t.str;
        if (takeWal) {
          w++;
          if (we!.deleted) continue;
          if (prefix && !we!.str.startsWith(prefix)) continue;
          produced++;
          yield [keyFromRecord(we!.key, we!.keyIsString ? FLAG_STRING_KEY : 0), self.walValueSync(we!)!];
        } else {
          const cur = t!;
          t = nextIndexed();
          if (prefix && !cur.str.startsWith(prefix)) continue;
          produced++;
          yield [keyFromRecord(cur.rec.key, cur.rec.flags), db.decode(cur.rec.valueType, cur.rec.value)];
        }
      }
    }
    return iterate();
  }

  /** Keys only, in order; same options as range(). */
  *keys(opts: RangeOptions = {}): IterableIterator<Key> {
    for (const [k] of this.range(opts)) yield k;
  }

  private walValueSync(e: WalEntry): Value | undefined {
    if (e.deleted) return undefined;
    if (e.value) return this.db.decode(e.valueType, e.value);
    const rec = this.db.guard(() => this.db.readRecordSync(e.addr));
    return this.db.decode(rec.valueType, rec.value);
  }

  /** The index returns a candidate; the record's own key and store confirm it. */
  private confirmed(rec: DecodedRecord, k: KeyBytes): boolean {
    if (rec.storeId !== this.state.id || rec.kind === KIND_DELETE) return false;
    const a = rec.key;
    const b = k.bytes;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
}

interface Bounds {
  lo: KeyBytes | null;
  loInclusive: boolean;
  hi: KeyBytes | null;
  hiInclusive: boolean;
  /** The prefix as a latin1 string, when one was given. */
  prefix: string | null;
}

function bounds(o: RangeOptions): Bounds {
  if (typeof o !== 'object' || o === null) throw new ForestError('INVALID_ARGUMENT', 'range options must be an object');
  let lo: KeyBytes | null = null;
  let loInclusive = true;
  let hi: KeyBytes | null = null;
  let hiInclusive = false;
  if (o.gt !== undefined) {
    lo = keyBytes(o.gt);
    loInclusive = false;
  } else if (o.gte !== undefined) {
    lo = keyBytes(o.gte);
  }
  if (o.lt !== undefined) {
    hi = keyBytes(o.lt);
  } else if (o.lte !== undefined) {
    hi = keyBytes(o.lte);
    hiInclusive = true;
  }
  let prefix: string | null = null;
  if (o.prefix !== undefined) {
    const p = keyBytes(o.prefix);
    prefix = p.str;
    // Narrow the bounds to [prefix, successor(prefix)).
    if (!lo || lo.str < p.str) {
      lo = p;
      loInclusive = true;
    }
    const succ = successor(p.bytes);
    if (succ && (!hi || succ.str < hi.str)) {
      hi = succ;
      hiInclusive = false;
    }
  }
  return { lo, loInclusive, hi, hiInclusive, prefix };
}

/** The smallest key greater than every key starting with `p`, or null if there is none. */
function successor(p: Uint8Array): KeyBytes | null {
  const s = Uint8Array.prototype.slice.call(p);
  for (let i = s.length - 1; i >= 0; i--) {
    if (s[i]! < 0xff) {
      s[i]!++;
      return keyBytes(s.subarray(0, i + 1));
    }
  }
  return null;
}
