export { Database, type OpenOptions, type DatabaseStats, type Durability } from './database.js';
export { Store, type RangeOptions } from './store.js';
export { MAX_KEY_LENGTH, type Key, type Value } from './codec.js';
