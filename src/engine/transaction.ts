import { ForestError } from '../errors.js';
import { inBounds, resolveBounds, type RangeOptions } from './bounds.js';
import { keyBytes, type Key, type Value } from './codec.js';
import type { Database, StoreState, WriteOp } from './database.js';
import { keyOf, type StoreReader, type Version } from './reader.js';
import { KIND_DELETE, KIND_PUT } from './record.js';
import { entryOfWrite } from './wal-index.js';
import type { Snapshot } from './snapshot.js';
import type { WriteOptions } from './store.js';

/** A value read inside a transaction; `seq` is null for the transaction's own writes. */
export interface TxEntry {
  key: Key;
  value: Value;
  seq: number | null;
}

/**
 * The handle `db.transaction(fn)` passes to `fn`. Reads see the snapshot taken when the
 * transaction began plus the transaction's own writes. Writes are buffered and committed
 * together, in one commit, when `fn` returns; conditions (`ifAbsent`, `ifVersion`) are
 * checked against the latest commit at that moment, and one failed condition fails the
 * whole transaction with CONFLICT.
 */
export class Transaction {
  private readonly handles = new Map<string, TxStore>();
  private active = true;
  /** @internal Buffered writes, in order. */
  readonly ops: WriteOp[] = [];

  /** @internal */
  constructor(private readonly db: Database, private readonly snapshot: Snapshot) {}

  /** Sequence number of the snapshot the transaction reads. */
  get seq(): number {
    return this.snapshot.seq;
  }

  /** The named store (created, like db.store(name), when missing). */
  store(name = 'default'): TxStore {
    this.assertActive();
    let s = this.handles.get(name);
    if (!s) {
      s = new TxStore(this, this.db, this.db.storeState(name), this.snapshot.store(name));
      this.handles.set(name, s);
    }
    return s;
  }

  /** @internal Ends the transaction; returns its writes. */
  end(): WriteOp[] {
    this.active = false;
    return this.ops;
  }

  /** @internal */
  assertActive(): void {
    if (!this.active) throw new ForestError('CLOSED', 'the transaction has ended (use it only inside its function)');
  }
}

export class TxStore {
  /**
   * The transaction's latest write per key (latin1 key string), built at the first read: a
   * transaction that only writes (a batched load) then costs no Version and no map entry per
   * write, only its WriteOp.
   */
  private written: Map<string, Version> | null = null;

  /** @internal */
  constructor(
    private readonly tx: Transaction,
    private readonly db: Database,
    private readonly state: StoreState,
    private readonly base: StoreReader,
  ) {}

  get name(): string {
    return this.state.name;
  }

  get(key: Key): Value | undefined {
    const v = this.version(key);
    return v ? this.base.valueOf(v) : undefined;
  }

  getEntry(key: Key): TxEntry | undefined {
    const v = this.version(key);
    if (!v) return undefined;
    return { key: keyOf(v), value: this.base.valueOf(v), seq: this.writes.has(v.str) ? null : v.seq };
  }

  has(key: Key): boolean {
    return this.version(key) !== undefined;
  }

  getMany(keys: readonly Key[]): (Value | undefined)[] {
    if (!Array.isArray(keys)) throw new ForestError('INVALID_ARGUMENT', 'getMany takes an array of keys');
    return keys.map((k) => this.get(k));
  }

  /** Like Store.range, over the snapshot plus this transaction's writes. */
  range(opts: RangeOptions = {}): IterableIterator<[Key, Value]> {
    this.tx.assertActive();
    const b = resolveBounds(opts);
    const mine = [...this.writes.values()].filter((v) => inBounds(b, v.str)).sort((x, y) => (x.str < y.str ? -1 : x.str > y.str ? 1 : 0));
    if (b.reverse) mine.reverse();
    const base = this.base.versions({ ...b, limit: Infinity }, false);
    const self = this;
    return (function* () {
      let produced = 0;
      let m = 0;
      let t = base.next();
      while (produced < b.limit) {
        const w = m < mine.length ? mine[m]! : null;
        if (!w && t.done) return;
        let v: Version;
        if (w && (t.done || w.str === t.value.str || (b.reverse ? w.str > t.value.str : w.str < t.value.str))) {
          if (!t.done && w.str === t.value.str) t = base.next();
          m++;
          if (w.deleted) continue;
          v = w;
        } else {
          v = t.value as Version;
          t = base.next();
        }
        produced++;
        yield [keyOf(v), self.base.valueOf(v)] as [Key, Value];
      }
    })();
  }

  *keys(opts: RangeOptions = {}): IterableIterator<Key> {
    for (const [k] of this.range(opts)) yield k;
  }

  /** Buffers a put; bad input throws here (and aborts the transaction if not caught). */
  put(key: Key, value: Value, opts?: WriteOptions): void {
    this.buffer(this.db.prepareWrite(this.state, KIND_PUT, key, value, opts));
  }

  del(key: Key, opts?: WriteOptions): void {
    this.buffer(this.db.prepareWrite(this.state, KIND_DELETE, key, undefined, opts));
  }

  private buffer(op: WriteOp): void {
    this.tx.assertActive();
    this.tx.ops.push(op);
    if (this.written) this.written.set(op.key.str, entryOfWrite(op, 0, 0, 0, op.value));
  }

  /** This store's writes so far, by key (the latest one per key). */
  private get writes(): Map<string, Version> {
    if (!this.written) {
      this.written = new Map();
      for (const op of this.tx.ops) if (op.store === this.state) this.written.set(op.key.str, entryOfWrite(op, 0, 0, 0, op.value));
    }
    return this.written;
  }

  private version(key: Key): Version | undefined {
    this.tx.assertActive();
    const k = keyBytes(key);
    const w = this.writes.get(k.str);
    if (w) return w.deleted ? undefined : w;
    return this.base.version(k);
  }
}
