import type { Key, Value } from './codec.js';
import type { Database, StoreState } from './database.js';
import { StoreReader } from './reader.js';
import { KIND_DELETE, KIND_PUT } from './record.js';

/** Conditions that make a write safe for read-modify-write; a failed one rejects with CONFLICT. */
export interface WriteOptions {
  /** Write only if the key is absent (never written, or deleted). */
  ifAbsent?: boolean;
  /** Write only if the key's current version has this sequence number (from getEntry). */
  ifVersion?: number;
}

/**
 * A named key-value store inside a database (ForestDB's KV store): its own keys, its own
 * index, isolated from the other stores. Reads are synchronous (`get`, `has`, `range`) or
 * asynchronous (`getAsync`) and see the latest commit; writes resolve, with their sequence
 * number, once their commit is durable.
 */
export class Store extends StoreReader {
  /** @internal */
  constructor(db: Database, private readonly state: StoreState) {
    super(db, state, () => db.assertOpen());
  }

  put(key: Key, value: Value, opts?: WriteOptions): Promise<number> {
    return this.db.write(this.state, KIND_PUT, key, value, opts);
  }

  del(key: Key, opts?: WriteOptions): Promise<number> {
    return this.db.write(this.state, KIND_DELETE, key, undefined, opts);
  }
}
