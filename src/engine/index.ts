export { Database, type OpenOptions, type DatabaseStats, type Durability } from './database.js';
export { Store, type WriteOptions } from './store.js';
export { StoreReader, type Entry, type Change, type ChangesOptions } from './reader.js';
export { Snapshot } from './snapshot.js';
export { Transaction, TxStore, type TxEntry } from './transaction.js';
export type { RangeOptions } from './bounds.js';
export { MAX_KEY_LENGTH, type Key, type Value } from './codec.js';
